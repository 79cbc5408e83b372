export { buildTopic, topicBrokerOptions } from './build.ts';
export { TopicEnv, type TopicConfig } from './config.ts';
