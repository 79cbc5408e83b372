#!/usr/bin/env -S node --import tsx
import { buildProgram, run } from './program.ts';

process.exitCode = await run(buildProgram(), process.argv);
