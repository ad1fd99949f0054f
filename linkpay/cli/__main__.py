"""``python -m linkpay.cli`` is the ``linkpay`` command."""

from linkpay.cli import main

main()
