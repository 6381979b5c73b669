/* s1ctl migrate: brings the database's schema to this s1ctl's version. */
#include <stdio.h>

#include "commands.h"
#include "db.h"
#include "flags.h"
#include "util.h"

static const char usage[] =
    "Usage: s1ctl migrate [--json] [--db CONNINFO]\n"
    "Applies the migrations compiled into s1ctl that the database lacks, in order,\n"
    "each in its own transaction. Safe to run again and from several hosts at once.\n"
    "--json prints {\"applied\": N, \"version\": V}.\n\n";

int s1ctl_migrate(int argc, char **argv)
{
    s1ctl_db_args a = {0};
    const s1ctl_flag_table tables[] = {{NULL, s1ctl_db_flags, 2, &a, NULL}};
    int n, rc = s1ctl_flags_parse(usage, tables, 1, argc, argv, &n);
    if (rc) return rc < 0 ? S1CTL_EXIT_OK : rc;
    if (n > 0) return s1ctl_fail(S1CTL_EXIT_USAGE, "unexpected argument '%s'", argv[1]);
    s1_err err = {{0}};
    _cleanup_pgconn_ PGconn *c = s1_db_connect(a.db, &err);
    if (!c) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    int applied;
    rc = s1_db_migrate(c, &applied, &err);
    if (rc < 0)
        return s1ctl_fail(rc == S1_DB_SCHEMA_MISMATCH ? S1CTL_EXIT_SCHEMA : S1CTL_EXIT_DB, "%s",
                          err.msg);
    if (a.json)
        return s1ctl_print_json(
            json_pack("{s:i,s:i}", "applied", applied, "version", s1_db_schema_target()));
    printf("schema s1 is at version %d (%d migration%s applied now)\n", s1_db_schema_target(),
           applied, applied == 1 ? "" : "s");
    return S1CTL_EXIT_OK;
}
