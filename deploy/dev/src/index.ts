export { compose, PKI_NAMES, RELEASES_CLIENT, SERVICES, type ServiceName } from './compose.ts';
