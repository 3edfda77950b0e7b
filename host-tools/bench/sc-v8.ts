// Imported first by sc-child.ts: the V8 flags `cta sc` runs with (bin/cta.js sets them
// once tsx is registered, before the SC's modules load), as the parent passed them.
import { setFlagsFromString } from 'node:v8';

const flags = process.env.CTA_SC_V8_FLAGS;
if (flags) setFlagsFromString(flags);
