"""The HTTP account dip done the native Asterisk way: ``CURL()`` and ``JSON_DECODE()``.

What a telephony engineer writes instead of a FastAGI script when the accounts live
behind HTTP: ``func_curl`` fetches the JSON the ``http`` lookup reads
(``bench/account_http.py`` serves it), ``func_json`` picks the fields, and the same
channel variables as ``account_lookup`` are set::

    same => n,Set(CC_BENCH_ACCOUNT_JSON=${CURL(http://127.0.0.1:PORT/accounts/${KEY})})
    same => n,Set(CC_ACCOUNT_ID=${JSON_DECODE(CC_BENCH_ACCOUNT_JSON,account_id)})
    ...
    same => n,Set(CC_LOOKUP_STATUS=${IF($["${CC_ACCOUNT_ID}" = ""]?not_found:found)})

Both modules are autoloaded by the product's modules.conf. The key is digits only
(``FILTER(0-9,...)`` before it reaches here); a 404 body is not JSON, so the id stays
empty and the status is ``not_found``. Pure text builders, no I/O.
"""

from __future__ import annotations

from callcenter.asterisk import variables as V

__all__ = ["JSON_VARIABLE", "dip_lines"]

#: Holds the fetched JSON between CURL() and JSON_DECODE() (bench only).
JSON_VARIABLE = "CC_BENCH_ACCOUNT_JSON"


def dip_lines(base_url: str, key: str) -> str:
    """Dialplan lines (``same => n,...``) doing the HTTP dip on ``key`` (already FILTERed);
    ``base_url`` is ``http://host:port`` of the account service."""
    j = JSON_VARIABLE
    vip = f'$["${{JSON_DECODE({j},vip)}}" = "true"]'
    no_id = f'$["${{{V.ACCOUNT_ID}}}" = ""]'
    return (
        f" same => n,Set({j}=${{CURL({base_url}/accounts/{key})}})\n"
        f" same => n,Set({V.ACCOUNT_ID}=${{JSON_DECODE({j},account_id)}})\n"
        f" same => n,Set({V.ACCOUNT_NAME}=${{JSON_DECODE({j},name)}})\n"
        f" same => n,Set({V.ACCOUNT_LANGUAGE}=${{JSON_DECODE({j},language)}})\n"
        f" same => n,Set({V.ACCOUNT_VIP}=${{IF({vip}?1:0)}})\n"
        f" same => n,Set({V.LOOKUP_STATUS}=${{IF({no_id}?not_found:found)}})\n"
    )
