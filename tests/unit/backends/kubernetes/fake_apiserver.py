"""A small Kubernetes API server emulator over real HTTP on loopback, for the API layer's contract test.

It speaks the wire protocol the official client uses (JSON documents, Status objects for errors, watch
streams as chunked newline-delimited events) for the few resources dtrun touches, and plays the Job
controller and kubelet for one of a few scripted outcomes per Job: succeed, run out of memory, stay
unschedulable, or run until stopped. Faults (a 500 on the next requests) are injected on demand, and
every request is recorded for the assertions.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Obj = dict[str, Any]
_COLLECTIONS = {("batch/v1", "jobs"): "Job", ("v1", "secrets"): "Secret", ("v1", "services"): "Service",
                ("v1", "pods"): "Pod", ("v1", "events"): "Event"}
UNSCHEDULABLE = ("0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2 nodes are "
                 "available: 2 No preemption victims found for incoming pod.")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    content_type: str | None
    status: int = 0
    at: float = field(default_factory=time.monotonic)


@dataclass
class FakeApiServer:
    """`outcome[job name]`: "succeed" (default), "oom", "unschedulable" or "run"; `logs[job name]`: lines."""

    outcome: dict[str, str] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)
    faults: list[tuple[str, int]] = field(default_factory=list)  # (method, status) for the next matching calls
    requests: list[Request] = field(default_factory=list)
    objects: dict[tuple[str, str, str], Obj] = field(default_factory=dict)  # (kind, namespace, name)
    history: list[tuple[int, str, Obj]] = field(default_factory=list)  # (resourceVersion, type, Job)
    step_s: float = 0.15
    nodes: list[Obj] | None = field(default_factory=list)  # None: listing nodes is forbidden
    #: Runs pods for real instead of the scripted outcomes: `run(pod) -> exit code` (blocking) and
    #: `stop(pod, grace)` (SIGTERM, then SIGKILL after grace). A deleted pod then stays, terminating,
    #: until its container has ended, as on a cluster.
    kubelet: Any = None

    def __post_init__(self) -> None:
        self.lock = threading.Condition()
        self._versions = itertools.count(1)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FakeApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def calls(self, method: str, fragment: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and fragment in r.path]

    # -- the store ------------------------------------------------------------------------------
    def put(self, obj: Obj, event: str = "MODIFIED") -> Obj:
        with self.lock:
            meta = obj["metadata"]
            meta["resourceVersion"] = str(next(self._versions))
            self.objects[(obj["kind"], meta.get("namespace", "default"), meta["name"])] = obj
            if obj["kind"] == "Job":
                self.history.append((int(meta["resourceVersion"]), event, json.loads(json.dumps(obj))))
            self.lock.notify_all()
            return obj

    def get(self, kind: str, ns: str, name: str) -> Obj | None:
        with self.lock:
            return self.objects.get((kind, ns, name))

    def remove(self, kind: str, ns: str, name: str) -> None:
        with self.lock:
            obj = self.objects.pop((kind, ns, name), None)
            if obj is not None and kind == "Job":
                uid = obj["metadata"]["uid"]
                for key, other in list(self.objects.items()):  # the garbage collector, at once
                    owners = other["metadata"].get("ownerReferences") or []
                    if other["metadata"].get("deletionTimestamp"):
                        continue  # terminating: the kubelet removes it when its container has ended
                    if any(o.get("uid") == uid for o in owners) or \
                            other["metadata"].get("labels", {}).get("job-name") == name:
                        self.objects.pop(key)
                self.history.append((next(self._versions), "DELETED", obj))
            self.lock.notify_all()

    # -- the Job controller and kubelet, scripted ------------------------------------------------
    def start_job(self, job: Obj) -> None:
        threading.Thread(target=self._play, args=(job["metadata"]["namespace"], job["metadata"]["name"]),
                         daemon=True).start()

    def _play(self, ns: str, name: str) -> None:
        job = self.get("Job", ns, name)
        assert job is not None
        outcome = self.outcome.get(name, "succeed")
        count = int(job["spec"].get("completions") or 1)
        pods = [self._new_pod(job, index) for index in range(count)]
        if outcome == "unschedulable":
            for pod in pods:
                pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False",
                                                "reason": "Unschedulable", "message": UNSCHEDULABLE}]
                self.put(pod)
                self.put({"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "FailedScheduling",
                          "message": UNSCHEDULABLE, "lastTimestamp": "2026-11-30T07:00:00Z",
                          "metadata": {"name": f"{pod['metadata']['name']}.1", "namespace": ns},
                          "involvedObject": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": ns}})
            return
        time.sleep(self.step_s)
        for pod in pods:
            pod["status"] = {"phase": "Running", "containerStatuses": [
                {"name": "job", "ready": True, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"running": {"startedAt": "2026-11-30T07:00:01Z"}}}]}
            self.put(pod)
        self._update_job(ns, name, {"active": count, "ready": count})
        if self.kubelet is not None:
            self._run_pods(ns, name, pods)
            return
        if outcome == "run":
            return
        time.sleep(self.step_s)
        if outcome == "oom":
            terminated = {"exitCode": 137, "reason": "OOMKilled"}
            final = {"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                                                   "reason": "BackoffLimitExceeded",
                                                   "message": "Job has reached the specified backoff limit"}]}
        else:
            terminated = {"exitCode": 0, "reason": "Completed"}
            final = {"succeeded": count, "conditions": [{"type": "Complete", "status": "True"}]}
        for pod in pods:
            pod["status"] = {"phase": "Failed" if terminated["exitCode"] else "Succeeded", "containerStatuses": [
                {"name": "job", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"terminated": terminated}}]}
            if self.get("Pod", ns, pod["metadata"]["name"]) is not None:
                self.put(pod)
        self._update_job(ns, name, {"active": 0, **final})

    def _run_pods(self, ns: str, name: str, pods: list[Obj]) -> None:
        codes: dict[int, int] = {}

        def run(index: int, pod: Obj) -> None:
            try:
                codes[index] = int(self.kubelet.run(pod))
            except Exception as exc:  # a pod the kubelet could not run fails, as CreateContainerError would
                print(f"fake kubelet: cannot run {pod['metadata']['name']}: {exc}", flush=True)
                codes[index] = 128
            terminated = {"exitCode": codes[index], "reason": "Completed" if codes[index] == 0 else "Error"}
            pod["status"] = {"phase": "Failed" if codes[index] else "Succeeded", "containerStatuses": [
                {"name": "job", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"terminated": terminated}}]}
            if pod["metadata"].get("deletionTimestamp"):
                with self.lock:
                    self.objects.pop(("Pod", ns, pod["metadata"]["name"]), None)
                    self.lock.notify_all()
            elif self.get("Pod", ns, pod["metadata"]["name"]) is not None:
                self.put(pod)

        threads = [threading.Thread(target=run, args=(i, p), daemon=True) for i, p in enumerate(pods)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failed = any(codes.values())
        final = {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                              "message": "Job has reached the specified backoff limit"}]} \
            if failed else {"succeeded": len(pods), "conditions": [{"type": "Complete", "status": "True"}]}
        self._update_job(ns, name, {"active": 0, **final})

    def terminate(self, ns: str, name: str, grace: int) -> Obj | None:
        """A graceful pod delete with a kubelet: the pod is marked and its container stopped."""
        with self.lock:
            pod = self.objects.get(("Pod", ns, name))
            if pod is None:
                return None
            pod["metadata"]["deletionTimestamp"] = "2026-11-30T07:00:09Z"
            pod["metadata"]["deletionGracePeriodSeconds"] = grace
        threading.Thread(target=self.kubelet.stop, args=(pod, grace), daemon=True).start()
        return pod

    def _new_pod(self, job: Obj, index: int) -> Obj:
        meta = job["metadata"]
        template = json.loads(json.dumps(job["spec"]["template"]))
        annotations = {"batch.kubernetes.io/job-completion-index": str(index)} \
            if job["spec"].get("completionMode") == "Indexed" else {}
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"], "status": {"phase": "Pending"},
               "metadata": {"name": f"{meta['name']}-{index}-{uuid.uuid4().hex[:5]}", "namespace": meta["namespace"],
                            "labels": {**template["metadata"]["labels"], "job-name": meta["name"]},
                            "annotations": annotations, "uid": str(uuid.uuid4()),
                            "creationTimestamp": f"2026-11-30T07:00:0{index}Z"}}
        return self.put(pod, "ADDED")

    def _update_job(self, ns: str, name: str, status: Obj) -> None:
        with self.lock:
            job = self.get("Job", ns, name)
            if job is not None:
                job["status"] = {**job.get("status", {}), **status}
                self.put(job)


def _status(code: int, reason: str, message: str) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason,
            "code": code}


def _matches(obj: Obj, labels: str | None, fields: str | None) -> bool:
    for pair in filter(None, (labels or "").split(",")):
        key, _, value = pair.partition("=")
        if obj["metadata"].get("labels", {}).get(key) != value:
            return False
    for pair in filter(None, (fields or "").split(",")):
        key, _, value = pair.partition("=")
        current: Any = obj
        for part in key.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if current != value:
            return False
    return True


def _handler(server: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(method, url.path, query, json.loads(raw) if raw else None,
                              self.headers.get("Content-Type"))
            server.requests.append(request)
            for i, (fault_method, code) in enumerate(server.faults):
                if fault_method == method:
                    server.faults.pop(i)
                    return self._send(request, code, _status(code, "InternalError", "injected fault"))

            def one(key: str) -> str | None:
                values = query.get(key)
                return values[0] if values else None

            if url.path == "/api/v1/nodes":  # cluster-scoped: only listed, from `nodes`
                if server.nodes is None:
                    return self._send(request, 403, _status(403, "Forbidden", "nodes is forbidden"))
                wanted = one("labelSelector") or ""
                items = [n for n in server.nodes if not wanted or wanted in n["metadata"]["labels"]]
                return self._send(request, 200, {"kind": "NodeList", "apiVersion": "v1", "items": items,
                                                 "metadata": {}})
            parts = url.path.strip("/").split("/")
            # /api/v1/namespaces/NS/RES[/NAME[/SUB]] or /apis/batch/v1/namespaces/NS/RES[/NAME]
            group = "v1" if parts[0] == "api" else f"{parts[1]}/{parts[2]}"
            rest = parts[2:] if parts[0] == "api" else parts[3:]
            ns, resource = rest[1], rest[2]
            name = rest[3] if len(rest) > 3 else None
            sub = rest[4] if len(rest) > 4 else None
            kind = _COLLECTIONS[(group, resource)]
            if method == "GET" and sub == "log":
                pod = server.get("Pod", ns, str(name))
                if pod is None:
                    return self._send(request, 404, _status(404, "NotFound", f'pods "{name}" not found'))
                lines = server.logs.get(pod["metadata"]["labels"]["job-name"], [])
                return self._send(request, 200, "".join(line + "\n" for line in lines).encode(), "text/plain")
            if method == "GET" and name is None and one("watch") == "true":
                return self._watch(request, ns, one("fieldSelector"),
                                   int(one("resourceVersion") or 0),
                                   float(one("timeoutSeconds") or 5))
            if method == "GET" and name is None:
                with server.lock:
                    items = [o for (k, n, _), o in server.objects.items() if k == kind and n == ns and
                             _matches(o, one("labelSelector"), one("fieldSelector"))]
                return self._send(request, 200, {"kind": f"{kind}List", "apiVersion": group,
                                                 "metadata": {"resourceVersion": "1"}, "items": items})
            if method == "POST":
                body = json.loads(raw)  # the request log keeps what was sent, untouched
                body["metadata"].setdefault("namespace", ns)
                if server.get(kind, ns, body["metadata"]["name"]) is not None:
                    return self._send(request, 409, _status(409, "AlreadyExists",
                                                            f'{resource} "{body["metadata"]["name"]}" already exists'))
                body["metadata"]["uid"] = str(uuid.uuid4())
                body.pop("stringData", None) if kind == "Secret" else None
                server.put(body, "ADDED")
                if kind == "Job" and not body["spec"].get("suspend"):
                    server.start_job(body)
                return self._send(request, 201, body)
            found = server.get(kind, ns, str(name))
            if found is None:
                return self._send(request, 404, _status(404, "NotFound", f'{resource} "{name}" not found'))
            if method == "GET":
                return self._send(request, 200, found)
            if method == "PATCH":
                if request.content_type != "application/merge-patch+json":
                    return self._send(request, 415, _status(415, "UnsupportedMediaType", str(request.content_type)))
                was_suspended = bool(found["spec"].get("suspend"))
                found["spec"].update(request.body.get("spec", {}))
                server.put(found)
                if kind == "Job" and was_suspended and not found["spec"].get("suspend"):
                    server.start_job(found)
                return self._send(request, 200, found)
            if method == "DELETE":
                if kind == "Pod" and server.kubelet is not None:
                    grace = int(one("gracePeriodSeconds") or 30)
                    return self._send(request, 200, server.terminate(ns, str(name), grace))
                server.remove(kind, ns, str(name))
                if kind == "Pod":  # a pod's graceful delete answers with the pod, as the API server does
                    return self._send(request, 200, found)
                return self._send(request, 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})
            return self._send(request, 405, _status(405, "MethodNotAllowed", method))

        def _watch(self, request: Request, ns: str, fields: str | None, since: int, timeout: float) -> None:
            request.status = 200
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            end = time.monotonic() + timeout
            sent = since
            try:
                with server.lock:
                    while time.monotonic() < end:
                        for version, kind, obj in server.history:
                            if version > sent and obj["metadata"]["namespace"] == ns and _matches(obj, None, fields):
                                line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
                                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                                self.wfile.flush()
                        sent = max([sent] + [v for v, _, _ in server.history])
                        server.lock.wait(max(0.0, min(0.2, end - time.monotonic())))
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client stopped watching: what clients do

        def _send(self, request: Request, code: int, body: Any, content_type: str = "application/json") -> None:
            request.status = code
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
