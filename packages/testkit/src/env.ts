/** Integration tests run against the real services this machine runs (see .ci/run). */
export const REDIS_URL = process.env.KEYWAY_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const AMQP_URL = process.env.KEYWAY_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
