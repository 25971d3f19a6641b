#!/usr/bin/env bun
/**
 * The `spooky` executable's entry point. It guards against SIGHUP first (see `runtime/startup-signals.ts`), and
 * only then loads the command line (`cli.ts`) with everything it imports: until the guard is in place, SIGHUP's
 * default action ends the process, and loading the rest takes a few hundred milliseconds.
 */
import { guardStartupSignals } from './runtime/startup-signals.ts';

guardStartupSignals();
await import('./cli.ts');
