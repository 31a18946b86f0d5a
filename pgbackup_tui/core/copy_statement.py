"""Where a COPY's rows begin in pg_dump's SQL text (a plain dump, each database of a pg_dumpall file,
pg_restore's script), read a line at a time: one rule for every reader (archive_scan's row
counter, plain_script's and cluster_file's readers), as each must agree on what is a row and what a
statement. Light on purpose: the archive follower's process imports it beside pg_dump.
"""

from __future__ import annotations

from collections.abc import Callable

# pg_dump's comment before a table's rows: `-- Data for Name: t; Type: TABLE DATA; Schema: public; …`.
# The name in it is written raw (a table `a; Type: INDEX; b`), so the comment is one of a TABLE
# DATA entry wherever it says so, not where its first `; Type:` does.
DATA_COMMENT = b"; Type: TABLE DATA;"
# A COPY statement is one line unless a quoted name in it holds a newline; one longer than this
# (1,600 columns of 63-byte names, doubled quotes and all, are ~210 kB) is not one pg_dump wrote.
STATEMENT_MAX = 1 << 20


# pg_dumpall's first comment: its globals (roles, tablespaces) come next, where no COPY is, though a
# role's COMMENT may hold a line that reads like one; each database's pg_dump text follows.
_CLUSTER_HEAD = b"-- PostgreSQL database cluster dump"


def is_entry_comment(line: bytes) -> bool:
    """Whether `line` is the comment pg_dump writes before each entry of its TOC."""
    return line.startswith((b"-- Name: ", b"-- Data for Name: "))


def copy_name_open(line: bytes) -> bool:
    """Whether `line` is a COPY statement that ends inside a quoted name: a newline in a table's or a
    column's name (`COPY public."a` + newline + `b" (x) FROM stdin;`), a quote inside one being
    doubled. Read a line at a time, such a statement was not seen: its rows were read as SQL."""
    return line.startswith(b"COPY ") and line.count(b'"') % 2 == 1


def is_copy_from_stdin(statement: bytes) -> bool:
    return statement.startswith(b"COPY ") and statement.rstrip().endswith(b"FROM stdin;")


class CopyStatements:
    """Feed it the lines outside COPY's rows (each with its newline, or each without: the same for
    all), and it says which statement's rows follow.

    Where the text has pg_dump's entry comments, a COPY is taken only in a TABLE DATA entry, once (a
    `--disable-triggers` dump writes ALTER TABLE … DISABLE TRIGGER ALL between the comment and it):
    a string's line that reads like one (a COMMENT ON TABLE that says how to load the table) is not
    one, neither to start rows nor to start a statement over lines. Such a line, taken for a COPY
    whose quoted name goes on, swallowed the rest of the file (a COMMIT; passed to psql, pg_dumpall's
    later databases unseen), and gathering it line by line cost the square of its length."""

    def __init__(self, opens: Callable[[bytes], bool] | None = None) -> None:
        self._opens = opens  # another statement the caller joins over lines (a CREATE TABLE's name)
        self.toc_comments = False  # the text has pg_dump's comments before its entries
        self.data_next = False  # in a TABLE DATA entry: its comment came, not its COPY yet
        self._parts: list[bytes] = []  # a statement over lines so far
        self._quotes = 0
        self._size = 0

    @property
    def copy_allowed(self) -> bool:
        return self.data_next or not self.toc_comments

    def comment(self, line: bytes) -> bool:
        """Whether `line` is an entry's comment (outside a statement): taken note of, nothing to run."""
        if self._parts or not (is_entry_comment(line) or line.startswith(_CLUSTER_HEAD)):
            return False
        self.toc_comments, self.data_next = True, is_entry_comment(line) and DATA_COMMENT in line
        return True

    @property
    def joining(self) -> bool:
        return bool(self._parts)

    def statement(self, line: bytes, sep: bytes = b"") -> bytes | None:
        """`line`, or the statement over lines it ends (its lines joined with `sep`); None while a
        quoted name in it goes on (up to STATEMENT_MAX: then it is given as it is)."""
        if not self._parts:
            if line.startswith(b"INSERT INTO "):  # a --inserts entry: its rows are these, no COPY comes after
                self.data_next = False
            if not (self.copy_allowed and copy_name_open(line)) and not (self._opens and self._opens(line)):
                return line
            self._quotes = 0
            self._size = 0
        self._parts.append(line)
        self._quotes += line.count(b'"')
        self._size += len(line)
        if self._quotes % 2 and self._size < STATEMENT_MAX:
            return None
        whole, self._parts = sep.join(self._parts), []
        return whole

    def rows_follow(self, statement: bytes) -> bool:
        """Whether `statement` is a COPY … FROM stdin whose rows come next (it is then the entry's COPY)."""
        if not self.copy_allowed or not is_copy_from_stdin(statement):
            return False
        self.data_next = False
        return True
