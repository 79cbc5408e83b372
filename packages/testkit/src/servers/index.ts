// Private servers for destructive tests, apart from the testkit's index so a package's unit test can
// use them without loading the whole suite.
export { startPostgresServer } from './postgres.ts';
export { startRabbitNode } from './rabbit.ts';
export { startRedisServer, type RedisServer } from './redis.ts';
