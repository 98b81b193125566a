"""An OpenAI-compatible server on 127.0.0.1 that fails on purpose (the real one, `transformers serve`, is the session
fixture `served_smollm2` of conftest.py, through `bailong.judge.serve`).

`FaultServer(script)` answers chat completions by script: for each request it takes the next action of the first script
key found in the request's last message, so concurrent requests about different questions stay deterministic.
"""
import contextlib, json, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


ACTIONS = "'timeout' (sleep past the client's timeout), 500, 429, 'noscore' (a judgment without a score), or the text to return"


class FaultServer:
    """An OpenAI-compatible chat completions server on 127.0.0.1 that misbehaves by script.

    `script` maps a text to the actions for requests whose last message contains it, taken in order; a request that
    matches no key, or whose actions ran out, gets `default` (a proper `[[N]]` judgment). Actions: """ + ACTIONS + """.
    Every request takes `latency` seconds. `requests` lists (key, action) for every request, `auth` the Authorization
    headers received, `max_in_flight` the most requests handled at once."""

    def __init__(self, script: dict | None = None, default: str = 'The answer is relevant and correct.\n\nRating: [[7]]',
                 delay: float = 3.0, latency: float = 0.0):
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.default, self.delay, self.latency = default, delay, latency
        self.requests, self.auth, self._lock = [], [], threading.Lock()
        self.in_flight = self.max_in_flight = 0

    def count(self, key=None) -> int:
        "Requests received, all or for one script key."
        return sum(1 for k, _ in self.requests if key is None or k == key)

    def _next(self, text: str):
        with self._lock:
            key = next((k for k in self.script if k in text), None)
            action = self.script[key].pop(0) if key is not None and self.script[key] else self.default
            self.requests.append((key, action))
            return action

    def __enter__(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args): pass

            def _send(self, status: int, body: dict, headers: dict = {}):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json'); self.send_header('Content-Length', str(len(data)))
                for k, v in headers.items(): self.send_header(k, v)
                self.end_headers(); self.wfile.write(data)

            def do_POST(self):
                with server._lock:
                    server.in_flight += 1; server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try: self._answer()
                finally:
                    with server._lock: server.in_flight -= 1

            def _answer(self):
                body = json.loads(self.rfile.read(int(self.headers.get('Content-Length', 0))))
                with server._lock: server.auth.append(self.headers.get('Authorization'))
                time.sleep(server.latency)
                if not self.path.endswith('/chat/completions'): return self._send(404, {'error': {'message': 'not found'}})
                action = server._next(body['messages'][-1]['content'])
                if action == 'timeout':
                    time.sleep(server.delay)  # the client has given up by now; what follows may hit a closed socket
                    action = server.default
                if action in (500, 429):
                    return self._send(action, {'error': {'message': f'injected {action}', 'type': 'server_error'}},
                                      {'retry-after-ms': '50'} if action == 429 else {})
                text = 'The answer is helpful and clearly written.' if action == 'noscore' else action
                with contextlib.suppress(OSError):
                    self._send(200, {'id': 'chatcmpl-test', 'object': 'chat.completion', 'created': int(time.time()),
                                     'model': body.get('model'), 'choices': [{'index': 0, 'finish_reason': 'stop',
                                     'message': {'role': 'assistant', 'content': text}}],
                                     'usage': {'prompt_tokens': 1, 'completion_tokens': 1, 'total_tokens': 2}})

        self._server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f'http://127.0.0.1:{self._server.server_address[1]}/v1'
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown(); self._server.server_close()
