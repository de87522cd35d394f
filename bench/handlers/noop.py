"""No-op handler: the cheapest possible invocation (throughput and latency)."""


def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "ok"}
