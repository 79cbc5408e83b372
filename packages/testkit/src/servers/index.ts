// Private servers for destructive tests, apart from the testkit's index so a package's unit test can
// use them without loading the whole suite.
export { EICAR, startClamdServer, type ClamdServer } from './clamd.ts';
export { startPostgresServer, type PostgresServer } from './postgres.ts';
export { startRabbitCluster, startRabbitNode, type RabbitCluster, type RabbitNode } from './rabbit.ts';
export { startRedisServer, type RedisServer } from './redis.ts';
// a free loopback port, for whatever else a test or bench starts itself
export { freePort } from './daemon.ts';
