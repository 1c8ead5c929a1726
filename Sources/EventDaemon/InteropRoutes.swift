import Hummingbird
import NIOCore

extension HTTPAPI {
    /// The routes of issue 18: `POST /api/events` (JSON events), `POST /v1/logs` (OTLP/HTTP logs) and
    /// `GET /metrics` (Prometheus text exposition). Behind the same token rule as every route.
    static func addInteropRoutes(to router: Router<BasicRequestContext>, _ api: APIContext) {
        HTTPIngest.addRoutes(to: router, api)
        router.get("/metrics") { _, _ in
            guard let render = api.metricsText else {
                throw APIError(.notFound, "this server keeps no metrics")
            }
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try await api.blocking(render))))
        }
    }
}
