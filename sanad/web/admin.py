"""User administration pages (admin only): users, roles, lockout with an audited unlock
reason, one-time passwords, and API keys for other systems."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sanad.api.deps import Principal, RegistryDep, require_page
from sanad.errors import SanadError
from sanad.registry import users
from sanad.registry.db import transaction
from sanad.registry.models import Role
from sanad.web.session import CsrfChecked, render

router = APIRouter(include_in_schema=False)
Admin = Annotated[Principal, Depends(require_page(Role.ADMIN))]


def _page(
    request: Request, registry: RegistryDep, user: Principal, *, error: str | None = None,
    secret: tuple[str, str] | None = None, status_code: int = 200,
) -> Response:
    with transaction(registry.sessions) as session:
        rows = [(u, users.is_locked(u)) for u in users.list_users(session)]
        keys = users.list_api_keys(session)
    return render(request, "users.html",
                  {"rows": rows, "keys": keys, "all_roles": [r.value for r in Role],
                   "error": error, "secret": secret},
                  user=user, status_code=status_code)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, registry: RegistryDep, user: Admin) -> Response:
    return _page(request, registry, user)


@router.post("/admin/users", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def create(request: Request, registry: RegistryDep, user: Admin) -> Response:
    form = await request.form()
    username = str(form.get("username") or "").strip()
    roles = [str(r) for r in form.getlist("roles")]
    password = users.new_password()
    try:
        with transaction(registry.sessions) as session:
            users.create_user(session, username=username, password=password, roles=roles,
                              actor=user.username)
    except SanadError as exc:
        return _page(request, registry, user, error=exc.message, status_code=422)
    return _page(request, registry, user, secret=(username, password), status_code=201)


@router.post("/admin/users/{user_id}", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def update(
    user_id: uuid.UUID, request: Request, registry: RegistryDep, user: Admin
) -> Response:
    """Roles, active flag, unlock (with a reason) or a new one-time password."""
    form = await request.form()
    action = str(form.get("action") or "")
    secret = None
    try:
        with transaction(registry.sessions) as session:
            if action == "unlock":
                users.unlock_user(session, user_id=user_id, actor=user.username,
                                  reason=str(form.get("reason") or ""))
            elif action == "roles":
                users.update_user(session, user_id=user_id, actor=user.username,
                                  roles=[str(r) for r in form.getlist("roles")],
                                  active=form.get("active") == "1")
            elif action == "password":
                password = users.reset_password(session, user_id=user_id, actor=user.username)
                secret = (users.get_user(session, user_id).username, password)
            else:
                raise SanadError(f"unknown action {action!r}")
    except SanadError as exc:
        return _page(request, registry, user, error=exc.message, status_code=422)
    if secret:
        return _page(request, registry, user, secret=secret)
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/api-keys", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def create_key(request: Request, registry: RegistryDep, user: Admin) -> Response:
    form = await request.form()
    name = str(form.get("name") or "")
    try:
        with transaction(registry.sessions) as session:
            secret, _ = users.create_api_key(session, name=name, actor=user.username,
                                             roles=[str(r) for r in form.getlist("roles")])
    except SanadError as exc:
        return _page(request, registry, user, error=exc.message, status_code=422)
    return _page(request, registry, user, secret=(f"key:{name}", secret), status_code=201)


@router.post("/admin/api-keys/{key_id}/revoke", dependencies=[CsrfChecked])
def revoke_key(key_id: uuid.UUID, registry: RegistryDep, user: Admin) -> Response:
    with transaction(registry.sessions) as session:
        users.revoke_api_key(session, key_id=key_id, actor=user.username)
    return RedirectResponse("/admin/users", status_code=303)
