"""``python -m autostudent …`` is the ``autostudent`` command."""

from autostudent.cli import main

main()
