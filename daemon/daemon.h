/* daemon/daemon.h — s1d's event loop, wired from its parts: the jobs and
 * their life (jobs.h), leases, the reaper and progress (leases.h), signals,
 * drain and reload (lifecycle.h). One loop thread owns the database
 * connection (conn.h), the timers and the signals; the engine runs on its
 * own thread (exec.h), completions are written by writer.h, systemd is told
 * by notify.h. */
#ifndef S1D_DAEMON_H
#define S1D_DAEMON_H

#include "config.h"
#include "runner.h"

/* Runs until SIGTERM/SIGINT (graceful drain) or a broken engine. cfg is
 * owned by the daemon from here (SIGHUP replaces its live settings);
 * argv is kept to re-read the configuration. Returns the exit status. */
int s1d_run(s1d_config *cfg, s1d_runner *runner, int argc, char **argv);

#endif
