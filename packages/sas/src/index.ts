export * from './errors.ts';
export * from './format.ts';
export * from './sign.ts';
export * from './verify.ts';
