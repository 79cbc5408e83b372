import { runService } from '@keyway/kit';
import { buildTopic } from './build.ts';
import { TopicEnv } from './config.ts';

await runService('topic', TopicEnv, buildTopic);
