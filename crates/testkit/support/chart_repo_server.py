"""A static HTTP(S) server for tests: a Helm chart repository served from a directory.

usage: chart_repo_server.py ROOT PORT_FILE LOG_FILE [USER PASSWORD] [CERT KEY CLIENT_CA]
USER/PASSWORD ("-" for none) require HTTP Basic auth; CERT, KEY and CLIENT_CA serve HTTPS and
require a client certificate. Answers carry an ETag (the content's SHA-256) and honour
If-None-Match with 304. Every request is appended to LOG_FILE as "STATUS PATH".
"""
import base64
import hashlib
import http.server
import os
import ssl
import sys

root, port_file, log_file = sys.argv[1:4]
user, password = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else ("-", "-")
tls = sys.argv[6:9] if len(sys.argv) > 8 else None
expected = None
if user != "-":
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status, headers, body = self.answer()
        # Logged before answering, so a client that got its answer finds it in the log.
        with open(log_file, "a") as log:
            log.write(f"{status} {self.path}\n")
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def answer(self):
        if expected and self.headers.get("Authorization") != expected:
            return 401, {"WWW-Authenticate": 'Basic realm="charts"'}, b""
        path = os.path.normpath(self.path.split("?")[0]).lstrip("/")
        full = os.path.join(root, path)
        if path.startswith("..") or not os.path.isfile(full):
            return 404, {}, b""
        with open(full, "rb") as f:
            body = f.read()
        etag = '"' + hashlib.sha256(body).hexdigest() + '"'
        if self.headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"ETag": etag}, body

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if tls:
    cert, key, client_ca = tls
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    server.socket = context.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(port_file + ".tmp", port_file)
server.serve_forever()
