#!/usr/bin/env node
// Entry point of the published CLI: the compiled code in dist/ (built by `npm run build`, run by `npm ci` via prepare).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);
