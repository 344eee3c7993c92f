# Copyright (c) OpenMMLab. All rights reserved.
"""One shared way for the command-line tools to report user errors."""
import ast
import os
import re
import sys
from typing import Callable, NoReturn, Optional

#: Exceptions that mean "bad input" (a missing or unreadable file, a wrong
#: value, an unknown registry name, a config that does not parse). Any other
#: exception is a bug and keeps its traceback.
USER_ERRORS = (OSError, ValueError, KeyError, SyntaxError)


def _original_message(message: str) -> str:
    """The original error's message of an error re-raised from a DataLoader
    worker.

    PyTorch re-raises an error of a worker process in the main process as
    the same type with the message ``Caught <Error> in DataLoader worker
    process <n>.`` followed by the worker's whole traceback, whose last
    line is ``<module.Error>: <original message>``. Other messages are
    returned unchanged.
    """
    if 'in DataLoader worker process' not in message or \
            'Original Traceback' not in message:
        return message
    last = message.strip().splitlines()[-1]
    match = re.match(r'^([\w.]+): (.*)$', last)
    if not match:
        return last
    text = match.group(2)
    if match.group(1).endswith('KeyError'):  # printed as its repr
        try:
            text = str(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            pass
    return text


def format_user_error(error: BaseException) -> str:
    """The one-line message of a user error, naming the file if known (also
    for an error raised in a DataLoader worker)."""
    if isinstance(error, OSError) and error.filename is not None:
        what = error.strerror or str(error)
        message = f'{what} ({error.filename})'
    elif isinstance(error, KeyError) and len(error.args) == 1:
        message = str(error.args[0])  # str(KeyError) adds quotes
    else:
        message = str(error) or type(error).__name__
    return ' '.join(_original_message(message).split())


def run_cli(main: Callable[[], Optional[int]]) -> NoReturn:
    """Run a tool's ``main`` and exit with its return code.

    A user error (:data:`USER_ERRORS`) prints ``error: <message>`` on one
    line to stderr and exits with status 2, without a stack trace; set the
    environment variable ``DMFORMER_DEBUG=1`` to get the traceback.

    Args:
        main (Callable): The tool's entry point; its return value (None or
            an int) is the exit status.
    """
    try:
        code = main()
    except USER_ERRORS as error:
        if os.environ.get('DMFORMER_DEBUG', '0') not in ('', '0'):
            raise
        print(f'error: {format_user_error(error)}', file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
