export { browserSession, type BrowserSessionDeps } from './browser-session.ts';
