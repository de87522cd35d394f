"""A handler that always raises, to see how errors reach the client and the log."""

import os


class OrderProcessingError(Exception):
    pass


def handler(event, context):
    raise OrderProcessingError(os.environ.get("BROKEN_MESSAGE", "broken"))
