"""What pg_restore's and psql's lines say while a restore runs (RestoreJob, restore.py).

pg_restore goes past a failed statement and counts it ("errors ignored on restore: N"): the job
ends `partial`, exit 3, naming the first one and what a DBA does about it. After a lost
connection it counts every statement that follows as ignored too: that is a failure, not a
partial restore.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .job_children import CONNECTION_LOST as LOST_HALF_WAY
from .job_children import statement_error

ERRORS_IGNORED = re.compile(r"errors ignored on restore: (\d+)")
# Parallel workers write to one stderr: a line may hold another's "pg_restore:" run into it
# ("pg_restore: error: pg_restore:could not execute query: …"), seen in CI; still this statement's error.
FAILED_STATEMENT = re.compile(r"error: (?:pg_restore: ?)*could not execute query: ERROR:\s+(.*)")
ANY_ERROR = re.compile(r"^pg_restore: error: ")
FAILED_COMMAND = re.compile(r"^Command was: (.*)")  # pg_restore's line after the error: the statement
# A connection the restore's own tool could not open: the job connected just before, so the server went.
CONNECTION_FAILED = re.compile(r"connection to server .* failed")


@dataclass
class RestoreOutput:
    """What the restore's lines have said so far."""

    errors_ignored: int = 0
    first_error: str | None = None  # what the first statement pg_restore went past said
    first_command: str | None = None  # that statement ("Command was: ..."), for the hint
    connection_lost: bool = False  # pg_restore lost the server half way
    # Statements that fail by design and change nothing (a pg_restore 17+'s SET transaction_timeout
    # on a server before 17, in each of its sessions): not counted, not named as the first error.
    harmless: frozenset[str] = frozenset()
    discounted: int = 0  # how many of those failed
    other_errors: int = 0  # every other error line pg_restore said
    _pending: str | None = None  # the error whose "Command was:" line is still to come

    def watch(self, line: str) -> None:
        match = ERRORS_IGNORED.search(line)
        if match:
            self.errors_ignored = int(match.group(1))
        failed = FAILED_STATEMENT.search(line)
        if failed:
            self._settle()
            self._pending = failed.group(1).strip()
        elif self._pending is not None and (command := FAILED_COMMAND.match(line)):
            statement = command.group(1).strip()
            if statement in self.harmless:
                self.discounted += 1
            else:
                self.other_errors += 1
                if self.first_error is None:
                    self.first_error, self.first_command = self._pending, statement
            self._pending = None
        elif ANY_ERROR.search(line):  # COPY failed for table, a tablespace not set...: counted, never discounted
            self.other_errors += 1
            if self.first_error is None and self._pending is None:  # named as a statement's is ("3 error(s)"
                # alone said nothing); one still waiting for its "Command was:" line came before it
                self.first_error = ANY_ERROR.sub("", line).strip()
        if (LOST_HALF_WAY.search(line) or CONNECTION_FAILED.search(line)) and not statement_error(line):
            self.connection_lost = True

    def _settle(self) -> None:
        """An error whose statement was not said: it counts, and may be the first."""
        if self._pending is not None:
            self.other_errors += 1
            if self.first_error is None:
                self.first_error = self._pending
        self._pending = None

    @property
    def errors_that_count(self) -> int:
        """pg_restore's "errors ignored" but the harmless ones: none when nothing else failed (its count
        leaves out some its parallel workers said, so it is not a plain difference), else at least
        the other errors seen."""
        self._settle()
        if not self.discounted:
            return self.errors_ignored
        if not self.other_errors:
            return 0
        return max(self.other_errors, self.errors_ignored - self.discounted)

    def first_error_said(self) -> str:
        """' (the first: …; what to do about it)', or '' when none was seen."""
        self._settle()
        if self.first_error is None:
            return ""
        return f" (the first: {self.first_error}{hint_for(self.first_error, self.first_command or '')})"


    def failure_hint(self) -> str:
        """What to do about the statement that stopped pg_restore (--exit-on-error: a whole-database
        --clean, --single-transaction), as first_error_said says it of one it went past; '' if none."""
        self._settle()
        return hint_for(self.first_error, self.first_command or "") if self.first_error is not None else ""


def hint_for(error: str, command: str = "") -> str:
    """What a DBA does about the commonest error a restore goes past: a role the target lacks, in
    a grant (--no-privileges), an owner (--no-owner), or a statement not known (both named); a
    tablespace it lacks (what became of the objects)."""
    if error.startswith("could not set default_tablespace"):
        return "; the objects meant for it were made in the default tablespace (create it first to keep them there)"
    if re.match(r'must be (?:member of role|able to SET ROLE) ".*"', error) and \
            re.search(r"\bOWNER TO\b", command, re.IGNORECASE):  # a role that may not give its objects away
        return "; --no-owner restores them as this role (or restore as one that is a member of the owners)"
    if not re.match(r'role ".*" does not exist', error):
        return ""
    if re.match(r"(GRANT|REVOKE)\b", command, re.IGNORECASE):
        return "; --no-privileges restores without the archive's grants (or create the role first)"
    if re.search(r"\bOWNER TO\b", command, re.IGNORECASE):
        return "; --no-owner restores without the archive's owners (or create the role first)"
    return "; --no-owner and --no-privileges restore without the archive's owners and grants"
