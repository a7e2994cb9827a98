/* tests/sql/diff/sql_gen.h: random SQL scripts for the differential suite.
 *
 * A script creates two or three tables (composite, DESC, INTEGER PRIMARY KEY
 * or no primary key; every affinity), fills them with values that collide on
 * key prefixes and cross types (text '7' into an INTEGER column, ...), then
 * runs queries whose output order is fully determined (ORDER BY every output
 * column): key-prefix and range filters, IN lists, joins, subqueries,
 * aggregates with GROUP BY/HAVING, LIMIT/OFFSET, and writes (UPDATE, DELETE,
 * INSERT OR REPLACE/IGNORE) each followed by a full read of the table; it
 * drops its tables at the end. Values are chosen so that results do not
 * depend on scan order: reals are small multiples of 0.25 (exact sums) and
 * never integral (no 3 = 3.0 ties that print differently), summed columns hold
 * small integers, and writes that could conflict touch one row. The same seed
 * gives the same script. */
#ifndef TESTS_SQL_DIFF_SQL_GEN_H
#define TESTS_SQL_DIFF_SQL_GEN_H

#include <stdint.h>

/* A malloc'd script for seed, its tables named PREFIX_t0, PREFIX_t1, ...
 * (prefix: letters, digits, '_'), or NULL when out of memory. */
char *sqlgen_script(uint64_t seed, const char *prefix);

#endif
