"""Progress of a job: how the percentage and the ETA are made, in one page.

1. The work, before anything runs: work items in phases (preparing, schema, data, indexes,
   finishing), each with a prior cost in seconds on the reference machine, from sizes and the
   rates of priors.py -- the only numbers measured on one machine, in one table (dump.py from the
   tables' sizes and expected rows, restore_plan.py from the archive's TOC and our manifest): a
   statement's round trip, and bytes at a rate for what moves bytes. A data item also knows its
   bytes on the wire (items.wire_bytes: the rows less their on-disk headers).

2. What is measured as the job starts, instead of trusting the reference machine:
   - this machine's pace (speed.machine_pace): the CPU time of a fixed piece of zlib work against
     the reference machine's, about 4 ms;
   - over TCP, the link (link.link_rate), on the progress monitor's own connection as it opens (no
     other is opened), before the polls' statement_timeout: 1 MiB fetched from the server twice, the
     second time timed; the bar stands still until then. Restores too: the link is taken as
     symmetric (a megabyte sent up would be a bind parameter a logging server writes to its log).
     A data item then costs at least its wire bytes at that rate. Over a Unix socket the server is
     this machine: no link to time; a dry run moves no data: none timed.

3. What is observed while it runs (tracker.py ticks every 0.25 s: at least 2 updates a second).
   pg_dump's and pg_restore's --verbose lines say which item starts and ends; one poll of the
   server's progress views (pg_stat_progress_copy: tuples over expected rows;
   pg_stat_progress_create_index: blocks while it scans, tuples while it loads, as shares of the
   build's time: the scan's share is the job's own once a build has shown it, a prior before)
   measures a running item's fraction; the child's files (its read position in the archive, the
   output's size) stand in where the server cannot tell; after pg_dump, the passes that record the backup
   (the checksum, rows counted by pg_restore) are measured by what they have read of the archive. Over
   TCP a serial dump's running table counts only what pg_dump has read from its socket (link.py):
   bytes still in the link's buffers are not done. An item nobody measures advances with the
   clock at the current pace, to at most 90 % until its end.

4. How fast this job goes (speed.py). k = seconds spent per prior second of work done, per pace
   class: a phase's small items (round trips) and its large ones (bytes). A class goes at the pace
   it has shown once it has 0.5 s of evidence, mixing in its prior before that. Its prior: in the
   data phase the other size's pace if it has one; else the machine's pace of step 2, then the
   pace of the work done so far on this machine (its bulk work once there is some, its round
   trips before): with a local server all of it, the data included (how busy the machine is
   shows there); with a server elsewhere only the passes run here (the data's pace is the
   link's, a remote server's says nothing of this one).

5. The time left R = the sum over items of (cost left x k). With --jobs, data and indexes take
   the largest of: the longest item, a big table's data plus its indexes, the sum / jobs, and the
   running items at their own pace -- the longest one, with a local server, faster once the other
   workers are done (a pace between its own and the machine's). Over a link the workers share
   (shared_link.py), the data left takes at least all its bytes on the wire at the rate they cross
   it (the job's, the timed link's until it shows one), and a running table alone goes at all of
   it, not at the share it showed beside the others. While a serial job's backend
   waits for a lock, R and the bar stand still (the pane says who holds the lock), and the wait
   is no evidence of speed.

6. The ETA is R smoothed (time constant 1 s, or a tenth of the elapsed time if shorter), shown
   from 5 % and 1 s on. The percentage is worked / (worked + ETA), worked being the elapsed time
   less the time the job waited (a serial job's backend behind a lock; a step that is a wait,
   info["wait"]: a restore's target checked while other sessions end): when the ETA is right the
   bar moves linearly in the job's working time, whatever the sizes. It stays at 0 until the job's
   data moves (a data item measured or ended after it ran; a job without data: an item past the
   preparations made), since the clock alone is no work done: a catalog read behind a lock no poll
   has seen yet, or a restore refused before it began, must not show a percentage (QA saw 80 % for
   one that restored nothing). It never goes back, stays at or below 99 while the job runs, and is
   exactly 100 (phase done) when the job succeeded; a job that fails keeps its last.

The bar it is held to (criteria.py, scripts/bench_progress.py, tests/test_progress_model.py):
|percent - 100 t / T| <= 10 points after 5 %; the ETA after 25 % within 20 % of the time left
(2 s when under 10 s are left); monotonic; 100 at the end; >= 2 updates a second. Jobs made of
whole steps (pg_dumpall's databases, a cluster set's members: count.py) use the same model, a step
an item measured by its member job's own progress or by the file it writes.

The parts: the model, pure (no I/O, no clock of its own) -- items.py (work items), priors.py,
speed.py (step 4), estimator.py and shared_link.py (steps 5 and 6), snapshot.py (what listeners
get); what feeds it
-- tracker.py (the ticks, the server's views), dump.py with inventory.py, restore.py with
restore_plan.py, csv.py, count.py (the jobs' lines and files), link.py (the link's rate, TCP bytes read),
files.py (/proc); the bar -- criteria.py.
"""

from .snapshot import PHASES, ProgressSnapshot, human_count

__all__ = ["PHASES", "ProgressSnapshot", "human_count"]
