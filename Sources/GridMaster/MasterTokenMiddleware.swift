import GridControl
import Hummingbird

/// Answers 401 (`ControlToken.refusal`, the usual JSON error) to a request without the control plane's token; on
/// every route of `MasterHTTP.router`, `/metrics` included.
struct MasterTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let refusal = ControlToken.refusal(authorization: request.headers[.authorization], token: token) {
            return MasterHTTP.error(refusal)
        }
        return try await next(request, context)
    }
}
