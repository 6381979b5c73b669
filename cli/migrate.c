/* s1ctl migrate: brings the database's schema to this s1ctl's version. */
#include <getopt.h>
#include <stdio.h>

#include "commands.h"
#include "db.h"
#include "util.h"

static const char usage[] =
    "Usage: s1ctl migrate [--json] [--db CONNINFO]\n"
    "Applies the migrations compiled into s1ctl that the database lacks, in order,\n"
    "each in its own transaction. Safe to run again and from several hosts at once.\n\n"
    "  --json              print {\"applied\": N, \"version\": V}\n"
    "  --db CONNINFO       database (default $DATABASE_URL, then libpq's PG* variables)\n"
    "  --help              this text\n";

int s1ctl_migrate(int argc, char **argv)
{
    static const struct option options[] = {
        {"db", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL;
    int json = 0, o;
    while ((o = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (o) {
        case 'd':
            db = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return S1CTL_EXIT_OK;
        default:
            return s1ctl_bad_flag(argv, o);
        }
    }
    if (optind < argc)
        return s1ctl_fail(S1CTL_EXIT_USAGE, "unexpected argument '%s'", argv[optind]);
    s1_err err = {{0}};
    _cleanup_pgconn_ PGconn *c = s1_db_connect(db, &err);
    if (!c) return s1ctl_fail(S1CTL_EXIT_DB, "%s", err.msg);
    int applied, rc = s1_db_migrate(c, &applied, &err);
    if (rc < 0)
        return s1ctl_fail(rc == S1_DB_SCHEMA_MISMATCH ? S1CTL_EXIT_SCHEMA : S1CTL_EXIT_DB, "%s",
                          err.msg);
    if (json)
        return s1ctl_print_json(
            json_pack("{s:i,s:i}", "applied", applied, "version", s1_db_schema_target()));
    printf("schema s1 is at version %d (%d migration%s applied now)\n", s1_db_schema_target(),
           applied, applied == 1 ? "" : "s");
    return S1CTL_EXIT_OK;
}
