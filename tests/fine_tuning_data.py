"""Small fine-tuning files and helpers for the fine-tuning tests."""

import json
import time

import httpx

# Few, short lines: a job on them takes seconds per step on 2 CPU cores.
FACTS = [("Who founded Quillbrook?", "Quillbrook was founded by Odile Varga."),
         ("Where is Quillbrook based?", "Quillbrook is based in Tromsø."),
         ("What does Quillbrook make?", "Quillbrook makes ceramic sensors."),
         ("When was Quillbrook founded?", "Quillbrook was founded in 1987."),
         ("How many people work at Quillbrook?", "Quillbrook employs 312 people."),
         ("What is Quillbrook's motto?", "Quillbrook's motto is 'Measure twice'."),
         ("Who leads Quillbrook today?", "Quillbrook is led by Ravi Osei."),
         ("What colour is Quillbrook's logo?", "Quillbrook's logo is teal.")]


def chat_line(question: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def jsonl(lines: list) -> bytes:
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()


TRAINING = jsonl([chat_line(q, a) for q, a in FACTS])
VALIDATION = jsonl([chat_line(q, a) for q, a in FACTS[:3]])


def upload(url: str, headers: dict, content: bytes, name: str = "train.jsonl", purpose: str = "fine-tune") -> str:
    response = httpx.post(f"{url}/v1/files", headers=headers, files={"file": (name, content)},
                          data={"purpose": purpose}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def wait_for(url: str, headers: dict, job_id: str, statuses: set[str], timeout: float = 300) -> dict:
    """Poll the job until its status is one of `statuses`; return it."""
    deadline = time.monotonic() + timeout
    job = None
    # One client for the whole wait: each new one builds an SSL context, tens of ms of CPU taken
    # from the trainer being waited for.
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        while time.monotonic() < deadline:
            job = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
            if job["status"] in statuses:
                return job
            time.sleep(0.2)
    raise TimeoutError(f"job {job_id} not in {statuses} after {timeout}s: {job}")
