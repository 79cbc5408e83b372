export { buildTopic, topicBrokerOptions } from './build.ts';
export { TopicEnv } from './config.ts';
