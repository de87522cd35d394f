"""The handlers of Smyth's docs: a module global counts the invocations a worker has served.

A warm worker keeps COUNT between invocations; a cold start begins again at 1, as on AWS.
"""

COUNT = 0


def order_handler(event, context):
    global COUNT
    COUNT += 1
    return {"message": "order handler", "count": COUNT}


def product_handler(event, context):
    global COUNT
    COUNT += 1
    return {"message": "product handler", "count": COUNT}
