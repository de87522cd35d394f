"""A small JSON API behind `/api/products/{id:int}` (API Gateway HTTP API, payload 2.0)."""

import json

PRODUCTS = {
    1: {"id": 1, "name": "anvil", "price": 120.0},
    2: {"id": 2, "name": "hammer", "price": 25.5},
    3: {"id": 3, "name": "tongs", "price": 14.0},
}


def _json(status, body):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def handler(event, context):
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET")
    if method != "GET":
        return _json(405, {"message": f"{method} not allowed"})
    product_id = int(event["pathParameters"]["id"])
    product = PRODUCTS.get(product_id)
    if product is None:
        return _json(404, {"message": f"no product {product_id}"})
    return _json(200, product)
