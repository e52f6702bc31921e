"""Where moto 5.2.5 differs from AWS in what the deploy tests touch: the one place they patch it.

Each patch makes moto behave as AWS does (never more leniently), runs only in the test
process (its moto server is threaded in this process) and is undone afterwards.

1. UpdateUserPool: AWS keeps the settings that only CreateUserPool can set
   (UsernameAttributes, AliasAttributes, UsernameConfiguration); moto rebuilds the
   pool's settings from the request alone and forgets them.
2. DeleteUserPool: AWS refuses it while the pool's DeletionProtection is ACTIVE; moto
   stores the setting but deletes anyway.
3. API Gateway import (ImportRestApi / PutRestApi): Chalice sends a Swagger 2.0
   document, which AWS accepts; moto takes only OpenAPI 3 and needs `info.description`.
   The paths and integrations are read the same way in both versions.
4. CreateDeployment to an existing stage: AWS points the stage at the new deployment and
   keeps its settings (throttling, ...); moto replaces the stage with a blank one, so
   every `chalice deploy` would undo `connect`'s throttling.
"""
import contextlib

CREATION_ONLY = ("UsernameAttributes", "AliasAttributes", "UsernameConfiguration")


def _keep_creation_only_settings(stack):
    from moto.cognitoidp.models import CognitoIdpUserPool

    original = CognitoIdpUserPool.update_extended_config

    def update_extended_config(self, extended_config):
        kept = {k: v for k, v in (getattr(self, "extended_config", None) or {}).items() if k in CREATION_ONLY}
        original(self, extended_config)
        self.extended_config.update(kept)
    CognitoIdpUserPool.update_extended_config = update_extended_config
    stack.callback(setattr, CognitoIdpUserPool, "update_extended_config", original)


def _honour_deletion_protection(stack):
    from moto.cognitoidp.exceptions import InvalidParameterException
    from moto.cognitoidp.models import CognitoIdpBackend

    original = CognitoIdpBackend.delete_user_pool

    def delete_user_pool(self, user_pool_id):
        pool = self.describe_user_pool(user_pool_id)
        if (getattr(pool, "extended_config", None) or {}).get("DeletionProtection") == "ACTIVE":
            raise InvalidParameterException(
                "The user pool cannot be deleted because deletion protection is activated. "
                "Deletion protection must be inactivated first.")
        return original(self, user_pool_id)
    CognitoIdpBackend.delete_user_pool = delete_user_pool
    stack.callback(setattr, CognitoIdpBackend, "delete_user_pool", original)


def _accept_swagger_2(stack):
    from moto.apigateway.models import APIGatewayBackend

    original_import, original_put = APIGatewayBackend.import_rest_api, APIGatewayBackend.put_rest_api

    def as_openapi_3(api_doc):
        if api_doc.get("swagger") == "2.0":
            api_doc = {k: v for k, v in api_doc.items() if k != "swagger"}
            api_doc["openapi"] = "3.0.1"
            api_doc["info"] = {"description": "", **api_doc.get("info", {})}
        return api_doc

    def import_rest_api(self, api_doc, fail_on_warnings):
        return original_import(self, as_openapi_3(api_doc), fail_on_warnings)

    def put_rest_api(self, function_id, api_doc, fail_on_warnings, mode="merge"):
        return original_put(self, function_id, as_openapi_3(api_doc), fail_on_warnings, mode)
    APIGatewayBackend.import_rest_api, APIGatewayBackend.put_rest_api = import_rest_api, put_rest_api
    stack.callback(setattr, APIGatewayBackend, "import_rest_api", original_import)
    stack.callback(setattr, APIGatewayBackend, "put_rest_api", original_put)


def _keep_stage_settings_on_redeploy(stack):
    from moto.apigateway.models import RestAPI

    original = RestAPI.create_deployment

    def create_deployment(self, name, description, stage_variables=None):
        existing = self.stages.get(name) if name else None
        deployment = original(self, name, description, stage_variables)
        if existing is not None:
            existing.deployment_id = self.stages[name].deployment_id
            existing.variables.update(stage_variables or {})
            self.stages[name] = existing
        return deployment
    RestAPI.create_deployment = create_deployment
    stack.callback(setattr, RestAPI, "create_deployment", original)


@contextlib.contextmanager
def patched():
    """moto with the gaps above closed, for the duration of the block."""
    with contextlib.ExitStack() as stack:
        _keep_creation_only_settings(stack)
        _honour_deletion_protection(stack)
        _accept_swagger_2(stack)
        _keep_stage_settings_on_redeploy(stack)
        yield
