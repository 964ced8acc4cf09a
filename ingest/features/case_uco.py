"""case.jsonld: the exhibits as CASE/UCO (CASE 1.3+, UCO 1.3+) JSON-LD, for graph tools.

    write_case_jsonld(path, case, exhibits, found, exported_at) -> nodes written

Per exhibit:
- one `observable:File` with a `FileFacet` (name, size) and a `ContentDataFacet`
  carrying its SHA-256 (UCO's hash vocabulary has no BLAKE3; exhibits.csv has it);
- one `case-investigation:InvestigativeAction` for its acquisition, with the tool
  (`tool:Tool`, name and version) as instrument, the operator (`identity:Identity`)
  as performer, its start time, and the file and its provenance record as results;
- one `case-investigation:ProvenanceRecord` with its exhibit number (`SP/1`).
Nodes are written one at a time, so memory does not grow with the exhibits.
Identifiers are UUIDs derived from the case and the object's BLAKE3, so a
second export names the same file with the same IRI.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Iterable

from ingest import TOOL, __version__
from ingest.case import Case
from ingest.features.handover import Acquisition

CONTEXT = {
    "kb": "http://example.org/kb/",
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
    "types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
NAMESPACE = uuid.UUID("5b0e3c1a-8f0e-4f69-9a43-3b7a6c0d2e11")     # ingest's own: ids below are uuid5 in it


def _iri(case_id: str, kind: str, key: str) -> str:
    return f"kb:{kind}-{uuid.uuid5(NAMESPACE, f'{case_id}/{kind}/{key}')}"


def _time(value: str) -> dict:
    return {"@type": "xsd:dateTime", "@value": value.replace("Z", "+00:00") if value.endswith("Z") else value}


def _integer(value: int) -> dict:
    return {"@type": "xsd:integer", "@value": int(value)}


def write_case_jsonld(path: Path, case: Case, exhibits: Iterable[dict], found: dict[str, Acquisition],
                      exported_at: str) -> int:
    case_id = case.config.created_at + case.config.name
    tool_id = _iri(case_id, "tool", TOOL)
    operators: dict[str, str] = {}
    count = 0
    with open(path, "x", encoding="utf-8", newline="\n") as out:
        out.write('{\n"@context": ' + json.dumps(CONTEXT, sort_keys=True) + ',\n"@graph": [\n')

        def node(value: dict) -> None:
            nonlocal count
            out.write((",\n" if count else "") + json.dumps(value, ensure_ascii=False, sort_keys=True))
            count += 1

        node({"@id": tool_id, "@type": "tool:Tool", "core:name": "ingest", "tool:version": __version__,
              "tool:toolType": "evidence preservation"})
        for exhibit in exhibits:
            key = exhibit["blake3"]
            acquisition = found.get(key)
            operator = acquisition.operator if acquisition else case.config.operator
            if operator not in operators:
                operators[operator] = _iri(case_id, "identity", operator)
                node({"@id": operators[operator], "@type": "identity:Identity", "core:name": operator})
            file_id = _iri(case_id, "file", key)
            provenance_id = _iri(case_id, "provenance-record", key)
            facets = [{"@id": _iri(case_id, "content-data-facet", key), "@type": "observable:ContentDataFacet",
                       "observable:sizeInBytes": _integer(exhibit["size"]),
                       "observable:hash": [{"@id": _iri(case_id, "hash", key), "@type": "types:Hash",
                                            "types:hashMethod": "SHA256",
                                            "types:hashValue": {"@type": "xsd:hexBinary",
                                                                "@value": exhibit["sha256"].upper()}}]}]
            file_facet = {"@id": _iri(case_id, "file-facet", key), "@type": "observable:FileFacet",
                          "observable:sizeInBytes": _integer(exhibit["size"])}
            if exhibit.get("filename"):
                file_facet["observable:fileName"] = exhibit["filename"]
            node({"@id": file_id, "@type": "observable:File", "core:description": exhibit["description"],
                  "core:hasFacet": [file_facet] + facets})
            action = {"@id": _iri(case_id, "investigative-action", key),
                      "@type": "case-investigation:InvestigativeAction",
                      "core:name": "acquisition", "core:description": f"{exhibit['mark']} kept from {exhibit['source']}",
                      "action:instrument": {"@id": tool_id}, "action:performer": {"@id": operators[operator]},
                      "action:result": [{"@id": file_id}, {"@id": provenance_id}]}
            if acquisition and acquisition.time:
                action["action:startTime"] = _time(acquisition.time)
            node(action)
            node({"@id": provenance_id, "@type": "case-investigation:ProvenanceRecord",
                  "case-investigation:exhibitNumber": exhibit["mark"], "core:object": [{"@id": file_id}],
                  "core:description": f"Exhibit {exhibit['mark']}, exported {exported_at}"})
        out.write("\n]\n}\n")
    return count
