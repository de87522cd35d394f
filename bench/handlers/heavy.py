"""Cold-start handler: its module imports a heavy slice of the standard library at init, like a
real Lambda that pulls in an SDK."""

import argparse  # noqa: F401
import asyncio  # noqa: F401
import concurrent.futures  # noqa: F401
import csv  # noqa: F401
import dataclasses  # noqa: F401
import decimal  # noqa: F401
import email.mime.multipart  # noqa: F401
import email.mime.text  # noqa: F401
import http.client  # noqa: F401
import http.server  # noqa: F401
import json
import logging.handlers  # noqa: F401
import sqlite3  # noqa: F401
import ssl  # noqa: F401
import statistics  # noqa: F401
import tarfile  # noqa: F401
import unittest  # noqa: F401
import urllib.request  # noqa: F401
import uuid  # noqa: F401
import xml.dom.minidom  # noqa: F401
import xml.etree.ElementTree  # noqa: F401
import zipfile  # noqa: F401


def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"modules": "loaded"})}
