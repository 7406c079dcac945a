#!/usr/bin/env node
// The operator CLI as a package bin: runs the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
