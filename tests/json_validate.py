#!/usr/bin/python3
"""Validates a JSON file against a JSON Schema (Debian's python3-jsonschema).
usage: json_validate.py SCHEMA FILE"""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
try:
    jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)
except jsonschema.ValidationError as e:
    print(f"json_validate: {sys.argv[2]}: {e.message} at {list(e.absolute_path)}", file=sys.stderr)
    sys.exit(1)
print("ok")
