"""How the Jobs pane shares a short height: the log keeps LOG_LEAST lines, whatever the terminal.

The table takes 40 % of the pane (jobs_table.py: a fixed height, so that a new job lays nothing
else out), the selected job's lines below it up to DETAILS_MOST, and the log the rest. At 60x20 (a
tmux pane, tree and tabs stacked) the pane is 10 rows high: the table, the title, the bar, the
result and the paths took them all and the log was pushed out of sight; at 100x20 it had one line.
So, on a short pane, the table gives up rows (down to its header and TABLE_LEAST_ROWS jobs; it
scrolls), and where that is not enough the details go compact: no blank line over the title, the
result on one line, no paths (`z` or a taller terminal shows them, and `jobs show`).

Only a resize sets these (a class and a max-height): a job's start, frames and end lay out nothing more.
"""

from __future__ import annotations

from textual.widget import Widget

LOG_LEAST = 3  # log lines a short pane still shows
LOG_BORDER = 1  # the rule over the log
TABLE_LEAST = 3  # the table's header and two jobs
DETAILS_MOST = 9  # the title and its blank line, the bar, the result (2 lines) and the paths (4)
COMPACT_DETAILS_MOST = 3  # compact: the title, the bar and the result (1 line)
COMPACT = "-compact"  # the pane's class when its details go compact (JobsPane's CSS)


def fit_heights(pane: Widget, table: Widget) -> None:
    """Cap the table's height and set the pane's compact class for the pane's height now."""
    height = pane.size.height
    if height <= 0:
        return  # a hidden tab: fitted when it shows (a resize)
    log = LOG_BORDER + LOG_LEAST
    compact = height < TABLE_LEAST + DETAILS_MOST + log
    pane.set_class(compact, COMPACT)
    details = COMPACT_DETAILS_MOST if compact else DETAILS_MOST
    # A cap on its 40 %: the same height wherever the pane has room (80x24 and more).
    table.styles.max_height = max(TABLE_LEAST, height - details - log)
