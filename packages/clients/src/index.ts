export * from './http.ts';
export * from './idp.ts';
export * from './entitlement.ts';
export * from './pas.ts';
export * from './pac.ts';
export * from './topic.ts';
export * from './audit.ts';
export * from './route.ts';
