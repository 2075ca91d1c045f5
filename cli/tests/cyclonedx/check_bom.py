"""Validates a `weightgate export --format cyclonedx` document against the official CycloneDX 1.6
JSON schema (strict: no unknown fields) with cyclonedx-python-lib, loads it with the library's
own model, and prints what it read as JSON for cli/tests/export_cli.rs to compare with the
attestation. A mutated copy must fail validation, so a validator that accepts anything fails.

  argv: BOM.json
"""
import json
import sys

from cyclonedx.model.bom import Bom
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

text = open(sys.argv[1], encoding="utf-8").read()
validator = JsonStrictValidator(SchemaVersion.V1_6)
error = validator.validate_str(text)
if error is not None:
    sys.exit(f"not valid CycloneDX 1.6: {error}")

doc = json.loads(text)
assert doc["specVersion"] == "1.6", doc["specVersion"]
broken = json.loads(text)
broken["metadata"]["component"]["type"] = "model"
assert validator.validate_str(json.dumps(broken)) is not None, "an unknown component type passed"

bom = Bom.from_json(doc)
assert not bom.components, "the model is the BOM's subject, not one of its components"
model = bom.metadata.component
props = {p.name: p.value for p in model.properties}
# The library's object model has no modelCard yet: read it from the validated document.
card = {p["name"]: p["value"] for p in doc["metadata"]["component"]["modelCard"]["properties"]}
summary = {
    "type": model.type.value,
    "name": model.name,
    "version": model.version,
    "manufacturer": model.manufacturer.name,
    "country": model.manufacturer.address.country,
    "contact": [c.email for c in model.manufacturer.contacts],
    "supplier": model.supplier.name,
    "files": {f.name: {h.alg.value: h.content for h in f.hashes} for f in model.components},
    "properties": props,
    "compute": card,
    "ancestors": [
        {"name": a.name, "properties": {p.name: p.value for p in a.properties}}
        for a in model.pedigree.ancestors
    ] if model.pedigree else [],
    "references": sorted(
        [{"type": r.type.value, "url": str(r.url), "comment": r.comment,
          "hashes": {h.alg.value: h.content for h in r.hashes}}
         for r in model.external_references],
        key=lambda r: r["url"]),
    "tools": [t.name for t in bom.metadata.tools.components],
    "timestamp": bom.metadata.timestamp.isoformat(),
    "serial_number": str(bom.serial_number),
    "purl": str(model.purl) if model.purl else None,
}
print(json.dumps(summary, indent=1, sort_keys=True))
