"""Reading 1C's `$metadata` (CSDL/EDMX, XML only) and checking the publication has what we need.

Partial OData publications are normal (reference §1.1): a missing set or field must stop the run with a
message that tells the 1C administrator which metadata object to add with
УстановитьСоставСтандартногоИнтерфейсаOData, instead of failing later with a bare 404/400.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from .errors import OneCPublicationError

# OData prefix -> the 1C metadata collection as the administrator sees it in the configurator.
_KINDS = {
    "Catalog": ("Справочник", "Справочники"),
    "Document": ("Документ", "Документы"),
    "DocumentJournal": ("Журнал документов", "ЖурналыДокументов"),
    "Constant": ("Константа", "Константы"),
    "ExchangePlan": ("План обмена", "ПланыОбмена"),
    "ChartOfAccounts": ("План счетов", "ПланыСчетов"),
    "ChartOfCalculationTypes": ("План видов расчета", "ПланыВидовРасчета"),
    "ChartOfCharacteristicTypes": ("План видов характеристик", "ПланыВидовХарактеристик"),
    "InformationRegister": ("Регистр сведений", "РегистрыСведений"),
    "AccumulationRegister": ("Регистр накопления", "РегистрыНакопления"),
    "CalculationRegister": ("Регистр расчета", "РегистрыРасчета"),
    "AccountingRegister": ("Регистр бухгалтерии", "РегистрыБухгалтерии"),
    "BusinessProcess": ("Бизнес-процесс", "БизнесПроцессы"),
    "Task": ("Задача", "Задачи"),
}


def describe_object(entity_set: str) -> str:
    """`Catalog_Номенклатура` -> «Справочник Номенклатура (Catalog_Номенклатура, Метаданные.Справочники.Номенклатура)».

    Tabular-section and `_RecordType` sets name their owner object (names may contain `_`, so the
    caller passes the owner's set name; this only strips a trailing `_RecordType`).
    """
    base = entity_set.split("/", 1)[0]
    if base.endswith("_RecordType"):
        base = base[: -len("_RecordType")]
    prefix, _, name = base.partition("_")
    kind = _KINDS.get(prefix)
    if not kind or not name:
        return entity_set
    return f"{kind[0]} {name} ({entity_set}, Метаданные.{kind[1]}.{name})"


def publication_hint(entity_set: str) -> str:
    return (
        f"{describe_object(entity_set)} is not in the 1C OData publication: add it with "
        "УстановитьСоставСтандартногоИнтерфейсаOData (e.g. from an external data processor) "
        "and give the integration user read rights"
    )


@dataclass
class Metadata:
    """Entity sets, their property types, tabular-section row types and bound functions."""

    sets: dict[str, str] = field(default_factory=dict)  # set name -> entity type name (no namespace)
    types: dict[str, dict[str, str]] = field(default_factory=dict)  # type name -> {property: Edm type}
    functions: dict[tuple[str, str], str] = field(default_factory=dict)  # (bound type, fn) -> result type

    @classmethod
    def parse(cls, xml: bytes) -> Metadata:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
        root = etree.fromstring(xml, parser=parser)
        meta = cls()
        for node in root.iter("{*}EntityType", "{*}ComplexType"):
            props = {p.get("Name"): p.get("Type") for p in node.findall("{*}Property")}
            meta.types[node.get("Name")] = props
        for node in root.iter("{*}EntitySet"):
            meta.sets[node.get("Name")] = _local(node.get("EntityType", ""))
        for node in root.iter("{*}FunctionImport"):
            binding = None
            for p in node.findall("{*}Parameter"):
                if p.get("Name") == "bindingParameter":
                    binding = _local(p.get("Type", ""))
            ret = node.get("ReturnType", "")
            if ret.startswith("Collection("):
                ret = ret[len("Collection(") : -1]
            if binding:
                meta.functions[(binding, node.get("Name"))] = _local(ret)
        return meta

    def has_set(self, entity_set: str) -> bool:
        return entity_set in self.sets

    def fields(self, entity_set: str) -> dict[str, str]:
        """{property: Edm type} of a set, or of a bound function's result (`Set/Balance`)."""
        base, _, fn = entity_set.partition("/")
        fn = fn.split("(", 1)[0]
        type_name = self.sets.get(base)
        if type_name is None:
            return {}
        if fn:
            result = self.functions.get((type_name, fn)) or f"{base}_{fn}"
            return self.types.get(result, {})
        return self.types.get(type_name, {})

    def row_types(self, entity_set: str) -> dict[str, dict[str, str]]:
        """{tabular section: {column: Edm type}} of a set."""
        out = {}
        for name, edm in self.fields(entity_set).items():
            if edm and edm.startswith("Collection("):
                out[name] = self.types.get(_local(edm[len("Collection(") : -1]), {})
        return out

    def is_composite(self, entity_set: str, name: str) -> bool:
        """`X` + `X_Type` both declared: a composite (or a ref declared as string) — keep them together."""
        props = self.fields(entity_set)
        return name in props and f"{name}_Type" in props

    def require(self, entity_set: str, fields: Iterable[str] = (), *, owner: str | None = None) -> None:
        """Raise OneCPublicationError unless `entity_set` (and each field) is published.

        `owner` names the 1C object for tabular-section sets (`Catalog_Контрагенты` for
        `Catalog_Контрагенты_КонтактнаяИнформация`). A function (`Set/Balance`) needs its owner set.
        """
        base, _, fn = entity_set.partition("/")
        if base not in self.sets:
            raise OneCPublicationError(publication_hint(owner or base))
        if fn and (self.sets[base], fn.split("(", 1)[0]) not in self.functions and not self.fields(entity_set):
            raise OneCPublicationError(
                f"{describe_object(owner or base)}: virtual table {fn} is not published "
                "(re-publish the register with УстановитьСоставСтандартногоИнтерфейсаOData)"
            )
        declared = self.fields(entity_set)
        if fn and not declared:
            return  # result type not described: nothing more to check
        missing = [f for f in fields if f.split("/", 1)[0] not in declared]
        if missing:
            raise OneCPublicationError(
                f"{describe_object(owner or base)}: field(s) {', '.join(missing)} not in $metadata of "
                f"{entity_set}; check the configuration release and the OData publication "
                "(УстановитьСоставСтандартногоИнтерфейсаOData)"
            )

    def require_all(self, needs: Mapping[str, Iterable[str]]) -> None:
        """Check many sets at once and report every problem in one error."""
        problems = []
        for entity_set, fields in needs.items():
            try:
                self.require(entity_set, fields)
            except OneCPublicationError as exc:
                problems.append(str(exc))
        if problems:
            raise OneCPublicationError("; ".join(problems))


def _local(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]
