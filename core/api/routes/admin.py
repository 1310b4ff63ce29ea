"""Settings, price cards, users, API tokens and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from core.api.paging import Cursors
from core.api.routes._common import ServicesDep, etag, if_match_tag, needs
from core.api.schemas import (
    IF_MATCH_PRICE_CARDS,
    PAGE_CURSOR,
    PLAIN_TEXT,
    AuditOut,
    AuditPageOut,
    NewToken,
    PasswordIn,
    PriceCardsIn,
    PriceCardsOut,
    RoleIn,
    SettingIn,
    SettingOut,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
)
from core.api.security import ActorDep
from core.services.accounts import MAX_AUDIT_PAGE
from core.services.settings import PRICE_CARDS, SPECS

router = APIRouter()

UserName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
#: Settings changed by name; the price cards have their own route, guarded by If-Match.
SETTING_NAMES = "|".join(name for name in SPECS if name != PRICE_CARDS)

# ------------------------------------------------------------------ settings and price cards


@router.get("/settings", response_model=list[SettingOut], tags=["settings"], **needs("settings.inspect"))
def list_settings(actor: ActorDep, svc: ServicesDep) -> list[SettingOut]:
    """Every setting as it resolves, with its source (URLs masked: no secret is returned)."""
    return [SettingOut.of(v) for v in svc.configuration.overview(actor)]


@router.put("/settings/{name}", response_model=SettingOut, tags=["settings"],
            **needs("settings.edit", body=True))
def change_setting(name: Annotated[str, Path(pattern=f"^({SETTING_NAMES})$")], body: SettingIn,
                   actor: ActorDep, svc: ServicesDep) -> SettingOut:
    """Set one setting (validated as in Settings; null resets it to the default).
    The price cards change through ``PUT /price-cards`` only, with If-Match."""
    return SettingOut.of(svc.configuration.change(actor, name, body.value))


@router.get("/price-cards", response_model=PriceCardsOut, tags=["settings"], **needs("settings.read"))
def get_price_cards(actor: ActorDep, svc: ServicesDep, response: Response) -> PriceCardsOut:
    """The price cards in use. ``ETag`` names the stored document: send it as If-Match to PUT."""
    view = svc.configuration.price_card_view(actor)
    response.headers["ETag"] = etag(view.tag)
    return PriceCardsOut.of(view)


@router.put("/price-cards", response_model=PriceCardsOut, tags=["settings"],
            **needs("settings.edit", 412, 428, body=True))
def put_price_cards(body: PriceCardsIn, actor: ActorDep, svc: ServicesDep, response: Response,
                    if_match: Annotated[str | None, Header(pattern=IF_MATCH_PRICE_CARDS,
                                                             description='the ETag of GET')] = None) -> PriceCardsOut:
    """Replace the price cards; ``If-Match`` (the ETag of GET) is required and checked as they are written."""
    svc.configuration.set_price_cards(body.model_dump(), actor, if_match_tag(if_match, "price cards"))
    view = svc.configuration.price_card_view(actor)
    response.headers["ETag"] = etag(view.tag)
    return PriceCardsOut.of(view)


# ------------------------------------------------------------------ users


@router.get("/users", response_model=list[UserOut], tags=["users"], **needs("user.read"))
def list_users(actor: ActorDep, svc: ServicesDep) -> list[UserOut]:
    return [UserOut.of(u) for u in svc.accounts.list_users(actor)]


@router.post("/users", status_code=201, response_model=UserOut, tags=["users"],
             **needs("user.manage", 409, body=True))
def add_user(body: UserIn, actor: ActorDep, svc: ServicesDep, response: Response) -> UserOut:
    """A new account with the initial password given (never returned)."""
    user = UserOut.of(svc.accounts.add_user(actor, body.name, body.role, body.password))
    response.headers["Location"] = f"/api/v1/users/{user.name}"
    return user


@router.get("/users/{name}", response_model=UserOut, tags=["users"], **needs("user.read", 404))
def get_user(name: UserName, actor: ActorDep, svc: ServicesDep) -> UserOut:
    return UserOut.of(svc.accounts.get_user(actor, name))


@router.put("/users/{name}/role", response_model=UserOut, tags=["users"], **needs("user.manage", 404, body=True))
def set_role(name: UserName, body: RoleIn, actor: ActorDep, svc: ServicesDep) -> UserOut:
    """Refused (422) when it would leave no enabled admin."""
    return UserOut.of(svc.accounts.set_role(actor, name, body.role))


@router.post("/users/{name}/disable", response_model=UserOut, tags=["users"], **needs("user.manage", 404))
def disable_user(name: UserName, actor: ActorDep, svc: ServicesDep) -> UserOut:
    """The account's sessions and tokens stop working at once."""
    return UserOut.of(svc.accounts.disable(actor, name))


@router.post("/users/{name}/enable", response_model=UserOut, tags=["users"], **needs("user.manage", 404))
def enable_user(name: UserName, actor: ActorDep, svc: ServicesDep) -> UserOut:
    return UserOut.of(svc.accounts.enable(actor, name))


@router.put("/users/{name}/password", response_model=UserOut, tags=["users"],
            **needs("user.manage", 404, body=True))
def reset_password(name: UserName, body: PasswordIn, actor: ActorDep, svc: ServicesDep) -> UserOut:
    """A new password (also lifts a lockout); the audit entry says it changed, never to what."""
    return UserOut.of(svc.accounts.reset_password(actor, name, body.password))


# ------------------------------------------------------------------ API tokens


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"], **needs("token.own"))
def list_tokens(actor: ActorDep, svc: ServicesDep,
                everyone: Annotated[bool, Query(description="every user's tokens (admin)")] = False,
                ) -> list[TokenOut]:
    """Your own tokens; ``everyone=true`` lists all (admin)."""
    return [TokenOut.of(t) for t in svc.accounts.list_tokens(actor, everyone=everyone)]


@router.post("/tokens", status_code=201, response_model=NewToken, tags=["tokens"], **needs("token.own", body=True))
def create_token(body: TokenIn, actor: ActorDep, svc: ServicesDep) -> NewToken:
    """A token of your own, at most your role. ``secret`` is in this answer only."""
    record, secret = svc.accounts.create_token(actor, body.name, body.ttl, body.role)
    return NewToken(**TokenOut.of(record).model_dump(), secret=secret)


@router.delete("/tokens/{token_id}", response_model=TokenOut, tags=["tokens"], **needs("token.own", 404))
def revoke_token(token_id: Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$")], actor: ActorDep,
                 svc: ServicesDep) -> TokenOut:
    """Revoke one of your tokens (an admin: anyone's); revoking twice changes nothing."""
    return TokenOut.of(svc.accounts.revoke_token(actor, token_id))


# ------------------------------------------------------------------ audit


@router.get("/audit", response_model=AuditPageOut, tags=["audit"], **needs("audit.read"))
def audit_log(actor: ActorDep, svc: ServicesDep, request: Request,
              subject: Annotated[str | None, Query(max_length=200, pattern=PLAIN_TEXT,
                                                   description="an experiment id, a user, settings.*, …")] = None,
              by: Annotated[str | None, Query(max_length=200, pattern=PLAIN_TEXT,
                                              description="the acting account")] = None,
              limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
              cursor: Annotated[str | None, Query(pattern=PAGE_CURSOR)] = None) -> AuditPageOut:
    """The newest entries first; ``cursor`` is the ``next_cursor`` of the previous page."""
    cursors: Cursors = request.app.state.cursors
    page = svc.accounts.audit_page(actor, subject=subject, by=by, limit=limit,
                                   before=cursors.decode_audit(cursor) if cursor else None)
    return AuditPageOut(items=[AuditOut.of(a) for a in page.items],
                        next_cursor=cursors.encode_audit(page.next_before) if page.next_before else None)
