import { Packr } from "msgpackr";

/**
 * msgpack with plain-object maps and `undefined` kept, as every slurmkit file
 * uses: spec records, results and states. Python's and R's msgpack libraries
 * read it.
 */
export const packr = new Packr({ useRecords: false, moreTypes: true });
