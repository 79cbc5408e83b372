export { compose, PKI_NAMES, SERVICES, type ComposeOptions, type Composition, type ServiceName } from './compose.ts';
