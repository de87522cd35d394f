"""Echoes the request id (query parameter `id`, else header `x-req-id`) so a client can match
every response to its request."""


def handler(event, context):
    query = event.get("queryStringParameters") or {}
    headers = event.get("headers") or {}
    rid = query.get("id") or headers.get("x-req-id") or ""
    return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": rid}
