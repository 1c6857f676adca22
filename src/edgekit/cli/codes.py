"""Exit codes of every ``edgekit`` command: one table, documented in the README.

CI scripts branch on these, so every command uses the names below and never a bare number.

==== =============== ==================================================================
code name            meaning
==== =============== ==================================================================
0    OK              done; everything asked for was measured, checked or written
1    FAILED          a check edgekit ran found a problem: ``profile --compare`` regression,
                     ``convert``'s verification of the written model
2    USAGE           usage or input error (bad option, unreadable model, input that does
                     not fit); the message says what to change
3    INCOMPLETE      only part of the job could be done: some profile rows failed under
                     ``--strict``, ``check`` found targets that cannot run the model,
                     ``tune`` could not confirm its winner within ``--budget``, a
                     ``devices calibrate`` fit that does not reach the data (not written)
4    NOTHING         nothing could be done: no profile row measured, no target or runtime
                     runs the model, no tune candidate runs and passes the accuracy gate,
                     ``fetch`` could not download its tool
130  INTERRUPTED     Ctrl-C; what was measured so far is still written
==== =============== ==================================================================

Example::

    from edgekit.cli.codes import NOTHING
    raise SystemExit(NOTHING)
"""

from __future__ import annotations

__all__ = ["FAILED", "INCOMPLETE", "INTERRUPTED", "NOTHING", "OK", "USAGE"]

OK = 0
FAILED = 1
USAGE = 2
INCOMPLETE = 3
NOTHING = 4
INTERRUPTED = 130
