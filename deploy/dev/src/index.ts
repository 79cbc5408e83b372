export { compose, PKI_NAMES, SERVICES, type ServiceName } from './compose.ts';
