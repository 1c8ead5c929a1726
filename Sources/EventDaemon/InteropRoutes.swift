import Hummingbird
import NIOCore

/// The routes of issue 18: `POST /api/events` (JSON events) and `POST /v1/logs` (OTLP/HTTP logs), both
/// HTTPIngest.swift, and `GET /metrics` (Prometheus text exposition). Behind the same token rule as every route.
enum InteropRoutes {
    static func addRoutes(to router: Router<BasicRequestContext>, api: APIContext) {
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
