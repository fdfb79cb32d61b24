#!/usr/bin/env python3
"""Derives data/m365/m365-controls.json from the CTID Mappings Explorer's Microsoft 365 mappings.

    python3 data/m365/derive.py ../shared/mappings/m365-07.18.2025_attack-16.1-enterprise.json

Keeps, per mapping: capability ID, description and group, the ATT&CK ID as mapped (16.1), the
score category (protect/detect/respond) and value (minimal/partial/significant), and the licence
tier read from the capability ID's suffix (E3/E5). Drops the free-text comments and references,
which are most of the file. Only mappings whose status is "complete" are kept (all 806 of the
07/18/2025 release are). Output is sorted and deterministic.
"""
import json
import sys
from pathlib import Path

src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/mappings/m365-07.18.2025_attack-16.1-enterprise.json")
data = json.loads(src.read_text())
meta = data["metadata"]
rows = []
for m in data["mapping_objects"]:
    if m.get("status") != "complete" or not m.get("attack_object_id"):
        continue
    cap = m["capability_id"]
    tier = cap.rsplit("-", 1)[-1]
    rows.append({
        "capability_id": cap,
        "description": m["capability_description"],
        "group": meta["capability_groups"].get(m["capability_group"], m["capability_group"]),
        "attack_id": m["attack_object_id"],
        "category": m["score_category"],
        "score": m["score_value"],
        "licence": tier if tier in ("E3", "E5") else None,
    })
rows.sort(key=lambda r: (r["attack_id"], r["capability_id"], r["category"]))
out = {
    "source": src.name,
    "attack_version": meta["attack_version"],
    "framework_version": meta["mapping_framework_version"],
    "licence": "Apache-2.0 (LICENSE-mappings-explorer.txt), Center for Threat-Informed Defense",
    "mappings": rows,
}
target = Path(__file__).with_name("m365-controls.json")
with target.open("w") as f:
    f.write("{\n")
    for k in ("source", "attack_version", "framework_version", "licence"):
        f.write(f"{json.dumps(k)}: {json.dumps(out[k])},\n")
    f.write('"mappings": [\n')
    f.write(",\n".join(json.dumps(r, separators=(",", ":")) for r in rows))
    f.write("\n]}\n")
print(f"{target}: {len(rows)} mappings")
