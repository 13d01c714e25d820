import datetime

from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Level(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEVEL_UNSPECIFIED: _ClassVar[Level]
    LEVEL_INFORMATIONAL: _ClassVar[Level]
    LEVEL_WARNING: _ClassVar[Level]
    LEVEL_ERROR: _ClassVar[Level]

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    SCOPE_PORTFOLIO: _ClassVar[Scope]
    SCOPE_SYSTEM: _ClassVar[Scope]

class Group(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GROUP_UNSPECIFIED: _ClassVar[Group]
    GROUP_CONFIGURATION: _ClassVar[Group]
    GROUP_DATASOURCE_MIRRORING: _ClassVar[Group]
    GROUP_REPOSITORY: _ClassVar[Group]
    GROUP_INTEGRATION: _ClassVar[Group]
    GROUP_FILE_SYSTEM: _ClassVar[Group]
    GROUP_ANALYZER: _ClassVar[Group]
    GROUP_NEW_VULNERABILITY: _ClassVar[Group]
    GROUP_NEW_VULNERABLE_DEPENDENCY: _ClassVar[Group]
    GROUP_PROJECT_AUDIT_CHANGE: _ClassVar[Group]
    GROUP_BOM_CONSUMED: _ClassVar[Group]
    GROUP_BOM_PROCESSED: _ClassVar[Group]
    GROUP_VEX_CONSUMED: _ClassVar[Group]
    GROUP_VEX_PROCESSED: _ClassVar[Group]
    GROUP_POLICY_VIOLATION: _ClassVar[Group]
    GROUP_PROJECT_CREATED: _ClassVar[Group]
    GROUP_BOM_PROCESSING_FAILED: _ClassVar[Group]
    GROUP_USER_CREATED: _ClassVar[Group]
    GROUP_USER_DELETED: _ClassVar[Group]
    GROUP_BOM_VALIDATION_FAILED: _ClassVar[Group]
    GROUP_VULNERABILITY_RETRACTED: _ClassVar[Group]
    GROUP_NEW_VULNERABILITIES_SUMMARY: _ClassVar[Group]
    GROUP_NEW_POLICY_VIOLATIONS_SUMMARY: _ClassVar[Group]

class AnalysisTrigger(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANALYSIS_TRIGGER_UNSPECIFIED: _ClassVar[AnalysisTrigger]
    ANALYSIS_TRIGGER_BOM_UPLOAD: _ClassVar[AnalysisTrigger]
    ANALYSIS_TRIGGER_SCHEDULE: _ClassVar[AnalysisTrigger]
    ANALYSIS_TRIGGER_MANUAL: _ClassVar[AnalysisTrigger]
LEVEL_UNSPECIFIED: Level
LEVEL_INFORMATIONAL: Level
LEVEL_WARNING: Level
LEVEL_ERROR: Level
SCOPE_UNSPECIFIED: Scope
SCOPE_PORTFOLIO: Scope
SCOPE_SYSTEM: Scope
GROUP_UNSPECIFIED: Group
GROUP_CONFIGURATION: Group
GROUP_DATASOURCE_MIRRORING: Group
GROUP_REPOSITORY: Group
GROUP_INTEGRATION: Group
GROUP_FILE_SYSTEM: Group
GROUP_ANALYZER: Group
GROUP_NEW_VULNERABILITY: Group
GROUP_NEW_VULNERABLE_DEPENDENCY: Group
GROUP_PROJECT_AUDIT_CHANGE: Group
GROUP_BOM_CONSUMED: Group
GROUP_BOM_PROCESSED: Group
GROUP_VEX_CONSUMED: Group
GROUP_VEX_PROCESSED: Group
GROUP_POLICY_VIOLATION: Group
GROUP_PROJECT_CREATED: Group
GROUP_BOM_PROCESSING_FAILED: Group
GROUP_USER_CREATED: Group
GROUP_USER_DELETED: Group
GROUP_BOM_VALIDATION_FAILED: Group
GROUP_VULNERABILITY_RETRACTED: Group
GROUP_NEW_VULNERABILITIES_SUMMARY: Group
GROUP_NEW_POLICY_VIOLATIONS_SUMMARY: Group
ANALYSIS_TRIGGER_UNSPECIFIED: AnalysisTrigger
ANALYSIS_TRIGGER_BOM_UPLOAD: AnalysisTrigger
ANALYSIS_TRIGGER_SCHEDULE: AnalysisTrigger
ANALYSIS_TRIGGER_MANUAL: AnalysisTrigger

class Notification(_message.Message):
    __slots__ = ("level", "scope", "group", "title", "content", "timestamp", "subject", "id")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    level: Level
    scope: Scope
    group: Group
    title: str
    content: str
    timestamp: _timestamp_pb2.Timestamp
    subject: _any_pb2.Any
    id: str
    def __init__(self, level: _Optional[_Union[Level, str]] = ..., scope: _Optional[_Union[Scope, str]] = ..., group: _Optional[_Union[Group, str]] = ..., title: _Optional[str] = ..., content: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subject: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., id: _Optional[str] = ...) -> None: ...

class BackReference(_message.Message):
    __slots__ = ("api_uri", "frontend_uri")
    API_URI_FIELD_NUMBER: _ClassVar[int]
    FRONTEND_URI_FIELD_NUMBER: _ClassVar[int]
    api_uri: str
    frontend_uri: str
    def __init__(self, api_uri: _Optional[str] = ..., frontend_uri: _Optional[str] = ...) -> None: ...

class BomConsumedOrProcessedSubject(_message.Message):
    __slots__ = ("project", "bom", "token")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    BOM_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    project: Project
    bom: Bom
    token: str
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., bom: _Optional[_Union[Bom, _Mapping]] = ..., token: _Optional[str] = ...) -> None: ...

class BomProcessingFailedSubject(_message.Message):
    __slots__ = ("project", "bom", "cause", "token")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    BOM_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    project: Project
    bom: Bom
    cause: str
    token: str
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., bom: _Optional[_Union[Bom, _Mapping]] = ..., cause: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class BomValidationFailedSubject(_message.Message):
    __slots__ = ("project", "bom", "errors")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    BOM_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    project: Project
    bom: Bom
    errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., bom: _Optional[_Union[Bom, _Mapping]] = ..., errors: _Optional[_Iterable[str]] = ...) -> None: ...

class Bom(_message.Message):
    __slots__ = ("content", "format", "spec_version")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    content: str
    format: str
    spec_version: str
    def __init__(self, content: _Optional[str] = ..., format: _Optional[str] = ..., spec_version: _Optional[str] = ...) -> None: ...

class NewVulnerabilitySubject(_message.Message):
    __slots__ = ("component", "project", "vulnerability", "affected_projects_reference", "vulnerability_analysis_level", "affected_projects", "analysis_trigger")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    VULNERABILITY_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_PROJECTS_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    VULNERABILITY_ANALYSIS_LEVEL_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_PROJECTS_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_TRIGGER_FIELD_NUMBER: _ClassVar[int]
    component: Component
    project: Project
    vulnerability: Vulnerability
    affected_projects_reference: BackReference
    vulnerability_analysis_level: str
    affected_projects: _containers.RepeatedCompositeFieldContainer[Project]
    analysis_trigger: AnalysisTrigger
    def __init__(self, component: _Optional[_Union[Component, _Mapping]] = ..., project: _Optional[_Union[Project, _Mapping]] = ..., vulnerability: _Optional[_Union[Vulnerability, _Mapping]] = ..., affected_projects_reference: _Optional[_Union[BackReference, _Mapping]] = ..., vulnerability_analysis_level: _Optional[str] = ..., affected_projects: _Optional[_Iterable[_Union[Project, _Mapping]]] = ..., analysis_trigger: _Optional[_Union[AnalysisTrigger, str]] = ...) -> None: ...

class NewVulnerableDependencySubject(_message.Message):
    __slots__ = ("component", "project", "vulnerabilities")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    VULNERABILITIES_FIELD_NUMBER: _ClassVar[int]
    component: Component
    project: Project
    vulnerabilities: _containers.RepeatedCompositeFieldContainer[Vulnerability]
    def __init__(self, component: _Optional[_Union[Component, _Mapping]] = ..., project: _Optional[_Union[Project, _Mapping]] = ..., vulnerabilities: _Optional[_Iterable[_Union[Vulnerability, _Mapping]]] = ...) -> None: ...

class PolicyViolationSubject(_message.Message):
    __slots__ = ("component", "project", "policy_violation")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    POLICY_VIOLATION_FIELD_NUMBER: _ClassVar[int]
    component: Component
    project: Project
    policy_violation: PolicyViolation
    def __init__(self, component: _Optional[_Union[Component, _Mapping]] = ..., project: _Optional[_Union[Project, _Mapping]] = ..., policy_violation: _Optional[_Union[PolicyViolation, _Mapping]] = ...) -> None: ...

class VexConsumedOrProcessedSubject(_message.Message):
    __slots__ = ("project", "vex", "format", "spec_version")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    VEX_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    project: Project
    vex: bytes
    format: str
    spec_version: str
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., vex: _Optional[bytes] = ..., format: _Optional[str] = ..., spec_version: _Optional[str] = ...) -> None: ...

class VulnerabilityAnalysisDecisionChangeSubject(_message.Message):
    __slots__ = ("component", "project", "vulnerability", "analysis")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    VULNERABILITY_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    component: Component
    project: Project
    vulnerability: Vulnerability
    analysis: VulnerabilityAnalysis
    def __init__(self, component: _Optional[_Union[Component, _Mapping]] = ..., project: _Optional[_Union[Project, _Mapping]] = ..., vulnerability: _Optional[_Union[Vulnerability, _Mapping]] = ..., analysis: _Optional[_Union[VulnerabilityAnalysis, _Mapping]] = ...) -> None: ...

class PolicyViolationAnalysisDecisionChangeSubject(_message.Message):
    __slots__ = ("component", "project", "policy_violation", "analysis")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    POLICY_VIOLATION_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    component: Component
    project: Project
    policy_violation: PolicyViolation
    analysis: PolicyViolationAnalysis
    def __init__(self, component: _Optional[_Union[Component, _Mapping]] = ..., project: _Optional[_Union[Project, _Mapping]] = ..., policy_violation: _Optional[_Union[PolicyViolation, _Mapping]] = ..., analysis: _Optional[_Union[PolicyViolationAnalysis, _Mapping]] = ...) -> None: ...

class Component(_message.Message):
    __slots__ = ("uuid", "group", "name", "version", "purl", "md5", "sha1", "sha256", "sha512")
    UUID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PURL_FIELD_NUMBER: _ClassVar[int]
    MD5_FIELD_NUMBER: _ClassVar[int]
    SHA1_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SHA512_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    group: str
    name: str
    version: str
    purl: str
    md5: str
    sha1: str
    sha256: str
    sha512: str
    def __init__(self, uuid: _Optional[str] = ..., group: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., purl: _Optional[str] = ..., md5: _Optional[str] = ..., sha1: _Optional[str] = ..., sha256: _Optional[str] = ..., sha512: _Optional[str] = ...) -> None: ...

class Project(_message.Message):
    __slots__ = ("uuid", "name", "version", "description", "purl", "tags", "is_active")
    UUID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PURL_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    IS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    name: str
    version: str
    description: str
    purl: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    is_active: bool
    def __init__(self, uuid: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., purl: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., is_active: _Optional[bool] = ...) -> None: ...

class PolicyViolation(_message.Message):
    __slots__ = ("uuid", "type", "timestamp", "condition")
    UUID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    type: str
    timestamp: _timestamp_pb2.Timestamp
    condition: PolicyCondition
    def __init__(self, uuid: _Optional[str] = ..., type: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., condition: _Optional[_Union[PolicyCondition, _Mapping]] = ...) -> None: ...

class PolicyCondition(_message.Message):
    __slots__ = ("uuid", "subject", "operator", "value", "policy")
    UUID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    subject: str
    operator: str
    value: str
    policy: Policy
    def __init__(self, uuid: _Optional[str] = ..., subject: _Optional[str] = ..., operator: _Optional[str] = ..., value: _Optional[str] = ..., policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("uuid", "name", "violation_state")
    UUID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VIOLATION_STATE_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    name: str
    violation_state: str
    def __init__(self, uuid: _Optional[str] = ..., name: _Optional[str] = ..., violation_state: _Optional[str] = ...) -> None: ...

class Vulnerability(_message.Message):
    __slots__ = ("uuid", "vuln_id", "source", "aliases", "title", "sub_title", "description", "recommendation", "cvss_v2", "cvss_v3", "owasp_rr_likelihood", "owasp_rr_technical_impact", "owasp_rr_business_impact", "severity", "cwes", "cvss_v2_vector", "cvss_v3_vector", "owasp_rr_vector", "cvss_v4", "cvss_v4_vector", "is_kev")
    class Alias(_message.Message):
        __slots__ = ("id", "source")
        ID_FIELD_NUMBER: _ClassVar[int]
        SOURCE_FIELD_NUMBER: _ClassVar[int]
        id: str
        source: str
        def __init__(self, id: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...
    class Cwe(_message.Message):
        __slots__ = ("cwe_id", "name")
        CWE_ID_FIELD_NUMBER: _ClassVar[int]
        NAME_FIELD_NUMBER: _ClassVar[int]
        cwe_id: int
        name: str
        def __init__(self, cwe_id: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...
    UUID_FIELD_NUMBER: _ClassVar[int]
    VULN_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SUB_TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_FIELD_NUMBER: _ClassVar[int]
    CVSS_V2_FIELD_NUMBER: _ClassVar[int]
    CVSS_V3_FIELD_NUMBER: _ClassVar[int]
    OWASP_RR_LIKELIHOOD_FIELD_NUMBER: _ClassVar[int]
    OWASP_RR_TECHNICAL_IMPACT_FIELD_NUMBER: _ClassVar[int]
    OWASP_RR_BUSINESS_IMPACT_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    CWES_FIELD_NUMBER: _ClassVar[int]
    CVSS_V2_VECTOR_FIELD_NUMBER: _ClassVar[int]
    CVSS_V3_VECTOR_FIELD_NUMBER: _ClassVar[int]
    OWASP_RR_VECTOR_FIELD_NUMBER: _ClassVar[int]
    CVSS_V4_FIELD_NUMBER: _ClassVar[int]
    CVSS_V4_VECTOR_FIELD_NUMBER: _ClassVar[int]
    IS_KEV_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    vuln_id: str
    source: str
    aliases: _containers.RepeatedCompositeFieldContainer[Vulnerability.Alias]
    title: str
    sub_title: str
    description: str
    recommendation: str
    cvss_v2: float
    cvss_v3: float
    owasp_rr_likelihood: float
    owasp_rr_technical_impact: float
    owasp_rr_business_impact: float
    severity: str
    cwes: _containers.RepeatedCompositeFieldContainer[Vulnerability.Cwe]
    cvss_v2_vector: str
    cvss_v3_vector: str
    owasp_rr_vector: str
    cvss_v4: float
    cvss_v4_vector: str
    is_kev: bool
    def __init__(self, uuid: _Optional[str] = ..., vuln_id: _Optional[str] = ..., source: _Optional[str] = ..., aliases: _Optional[_Iterable[_Union[Vulnerability.Alias, _Mapping]]] = ..., title: _Optional[str] = ..., sub_title: _Optional[str] = ..., description: _Optional[str] = ..., recommendation: _Optional[str] = ..., cvss_v2: _Optional[float] = ..., cvss_v3: _Optional[float] = ..., owasp_rr_likelihood: _Optional[float] = ..., owasp_rr_technical_impact: _Optional[float] = ..., owasp_rr_business_impact: _Optional[float] = ..., severity: _Optional[str] = ..., cwes: _Optional[_Iterable[_Union[Vulnerability.Cwe, _Mapping]]] = ..., cvss_v2_vector: _Optional[str] = ..., cvss_v3_vector: _Optional[str] = ..., owasp_rr_vector: _Optional[str] = ..., cvss_v4: _Optional[float] = ..., cvss_v4_vector: _Optional[str] = ..., is_kev: _Optional[bool] = ...) -> None: ...

class UserSubject(_message.Message):
    __slots__ = ("username", "email")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    username: str
    email: str
    def __init__(self, username: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class VulnerabilityAnalysis(_message.Message):
    __slots__ = ("component", "project", "vulnerability", "state", "suppressed")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    VULNERABILITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    component: Component
    project: Project
    vulnerability: Vulnerability
    state: str
    suppressed: bool
    def __init__(self, component: _Optional[_Union[Component, _Mapping]] = ..., project: _Optional[_Union[Project, _Mapping]] = ..., vulnerability: _Optional[_Union[Vulnerability, _Mapping]] = ..., state: _Optional[str] = ..., suppressed: _Optional[bool] = ...) -> None: ...

class PolicyViolationAnalysis(_message.Message):
    __slots__ = ("component", "project", "policy_violation", "state", "suppressed")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    POLICY_VIOLATION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    component: Component
    project: Project
    policy_violation: PolicyViolation
    state: str
    suppressed: bool
    def __init__(self, component: _Optional[_Union[Component, _Mapping]] = ..., project: _Optional[_Union[Project, _Mapping]] = ..., policy_violation: _Optional[_Union[PolicyViolation, _Mapping]] = ..., state: _Optional[str] = ..., suppressed: _Optional[bool] = ...) -> None: ...

class VulnerabilityRetractedSubject(_message.Message):
    __slots__ = ("component", "project", "vulnerability")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    VULNERABILITY_FIELD_NUMBER: _ClassVar[int]
    component: Component
    project: Project
    vulnerability: Vulnerability
    def __init__(self, component: _Optional[_Union[Component, _Mapping]] = ..., project: _Optional[_Union[Project, _Mapping]] = ..., vulnerability: _Optional[_Union[Vulnerability, _Mapping]] = ...) -> None: ...

class NewVulnerabilitiesSummarySubject(_message.Message):
    __slots__ = ("overview", "project_summaries", "findings_by_project", "since")
    class Overview(_message.Message):
        __slots__ = ("affected_projects_count", "affected_components_count", "new_vulnerabilities_count", "new_vulnerabilities_count_by_severity", "suppressed_new_vulnerabilities_count", "total_new_vulnerabilities_count")
        class NewVulnerabilitiesCountBySeverityEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: int
            def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
        AFFECTED_PROJECTS_COUNT_FIELD_NUMBER: _ClassVar[int]
        AFFECTED_COMPONENTS_COUNT_FIELD_NUMBER: _ClassVar[int]
        NEW_VULNERABILITIES_COUNT_FIELD_NUMBER: _ClassVar[int]
        NEW_VULNERABILITIES_COUNT_BY_SEVERITY_FIELD_NUMBER: _ClassVar[int]
        SUPPRESSED_NEW_VULNERABILITIES_COUNT_FIELD_NUMBER: _ClassVar[int]
        TOTAL_NEW_VULNERABILITIES_COUNT_FIELD_NUMBER: _ClassVar[int]
        affected_projects_count: int
        affected_components_count: int
        new_vulnerabilities_count: int
        new_vulnerabilities_count_by_severity: _containers.ScalarMap[str, int]
        suppressed_new_vulnerabilities_count: int
        total_new_vulnerabilities_count: int
        def __init__(self, affected_projects_count: _Optional[int] = ..., affected_components_count: _Optional[int] = ..., new_vulnerabilities_count: _Optional[int] = ..., new_vulnerabilities_count_by_severity: _Optional[_Mapping[str, int]] = ..., suppressed_new_vulnerabilities_count: _Optional[int] = ..., total_new_vulnerabilities_count: _Optional[int] = ...) -> None: ...
    class ProjectSummaryEntry(_message.Message):
        __slots__ = ("project", "new_vulnerabilities_count_by_severity", "suppressed_new_vulnerabilities_count_by_severity", "total_new_vulnerabilities_count_by_severity")
        class NewVulnerabilitiesCountBySeverityEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: int
            def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
        class SuppressedNewVulnerabilitiesCountBySeverityEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: int
            def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
        class TotalNewVulnerabilitiesCountBySeverityEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: int
            def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
        PROJECT_FIELD_NUMBER: _ClassVar[int]
        NEW_VULNERABILITIES_COUNT_BY_SEVERITY_FIELD_NUMBER: _ClassVar[int]
        SUPPRESSED_NEW_VULNERABILITIES_COUNT_BY_SEVERITY_FIELD_NUMBER: _ClassVar[int]
        TOTAL_NEW_VULNERABILITIES_COUNT_BY_SEVERITY_FIELD_NUMBER: _ClassVar[int]
        project: Project
        new_vulnerabilities_count_by_severity: _containers.ScalarMap[str, int]
        suppressed_new_vulnerabilities_count_by_severity: _containers.ScalarMap[str, int]
        total_new_vulnerabilities_count_by_severity: _containers.ScalarMap[str, int]
        def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., new_vulnerabilities_count_by_severity: _Optional[_Mapping[str, int]] = ..., suppressed_new_vulnerabilities_count_by_severity: _Optional[_Mapping[str, int]] = ..., total_new_vulnerabilities_count_by_severity: _Optional[_Mapping[str, int]] = ...) -> None: ...
    class ProjectFindingsEntry(_message.Message):
        __slots__ = ("project", "findings")
        PROJECT_FIELD_NUMBER: _ClassVar[int]
        FINDINGS_FIELD_NUMBER: _ClassVar[int]
        project: Project
        findings: _containers.RepeatedCompositeFieldContainer[NewVulnerabilitiesSummarySubject.Finding]
        def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., findings: _Optional[_Iterable[_Union[NewVulnerabilitiesSummarySubject.Finding, _Mapping]]] = ...) -> None: ...
    class Finding(_message.Message):
        __slots__ = ("component", "vulnerability", "analyzer_identity", "attributed_on", "reference_url", "analysis_state", "suppressed")
        COMPONENT_FIELD_NUMBER: _ClassVar[int]
        VULNERABILITY_FIELD_NUMBER: _ClassVar[int]
        ANALYZER_IDENTITY_FIELD_NUMBER: _ClassVar[int]
        ATTRIBUTED_ON_FIELD_NUMBER: _ClassVar[int]
        REFERENCE_URL_FIELD_NUMBER: _ClassVar[int]
        ANALYSIS_STATE_FIELD_NUMBER: _ClassVar[int]
        SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
        component: Component
        vulnerability: Vulnerability
        analyzer_identity: str
        attributed_on: _timestamp_pb2.Timestamp
        reference_url: str
        analysis_state: str
        suppressed: bool
        def __init__(self, component: _Optional[_Union[Component, _Mapping]] = ..., vulnerability: _Optional[_Union[Vulnerability, _Mapping]] = ..., analyzer_identity: _Optional[str] = ..., attributed_on: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reference_url: _Optional[str] = ..., analysis_state: _Optional[str] = ..., suppressed: _Optional[bool] = ...) -> None: ...
    OVERVIEW_FIELD_NUMBER: _ClassVar[int]
    PROJECT_SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_BY_PROJECT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    overview: NewVulnerabilitiesSummarySubject.Overview
    project_summaries: _containers.RepeatedCompositeFieldContainer[NewVulnerabilitiesSummarySubject.ProjectSummaryEntry]
    findings_by_project: _containers.RepeatedCompositeFieldContainer[NewVulnerabilitiesSummarySubject.ProjectFindingsEntry]
    since: _timestamp_pb2.Timestamp
    def __init__(self, overview: _Optional[_Union[NewVulnerabilitiesSummarySubject.Overview, _Mapping]] = ..., project_summaries: _Optional[_Iterable[_Union[NewVulnerabilitiesSummarySubject.ProjectSummaryEntry, _Mapping]]] = ..., findings_by_project: _Optional[_Iterable[_Union[NewVulnerabilitiesSummarySubject.ProjectFindingsEntry, _Mapping]]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class NewPolicyViolationsSummarySubject(_message.Message):
    __slots__ = ("overview", "project_summaries", "violations_by_project", "since")
    class Overview(_message.Message):
        __slots__ = ("affected_projects_count", "affected_components_count", "new_violations_count", "new_violations_count_by_type", "suppressed_new_violations_count", "total_new_violations_count")
        class NewViolationsCountByTypeEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: int
            def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
        AFFECTED_PROJECTS_COUNT_FIELD_NUMBER: _ClassVar[int]
        AFFECTED_COMPONENTS_COUNT_FIELD_NUMBER: _ClassVar[int]
        NEW_VIOLATIONS_COUNT_FIELD_NUMBER: _ClassVar[int]
        NEW_VIOLATIONS_COUNT_BY_TYPE_FIELD_NUMBER: _ClassVar[int]
        SUPPRESSED_NEW_VIOLATIONS_COUNT_FIELD_NUMBER: _ClassVar[int]
        TOTAL_NEW_VIOLATIONS_COUNT_FIELD_NUMBER: _ClassVar[int]
        affected_projects_count: int
        affected_components_count: int
        new_violations_count: int
        new_violations_count_by_type: _containers.ScalarMap[str, int]
        suppressed_new_violations_count: int
        total_new_violations_count: int
        def __init__(self, affected_projects_count: _Optional[int] = ..., affected_components_count: _Optional[int] = ..., new_violations_count: _Optional[int] = ..., new_violations_count_by_type: _Optional[_Mapping[str, int]] = ..., suppressed_new_violations_count: _Optional[int] = ..., total_new_violations_count: _Optional[int] = ...) -> None: ...
    class ProjectSummaryEntry(_message.Message):
        __slots__ = ("project", "new_violations_count_by_type", "suppressed_new_violations_count_by_type", "total_new_violations_count_by_type")
        class NewViolationsCountByTypeEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: int
            def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
        class SuppressedNewViolationsCountByTypeEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: int
            def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
        class TotalNewViolationsCountByTypeEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: int
            def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
        PROJECT_FIELD_NUMBER: _ClassVar[int]
        NEW_VIOLATIONS_COUNT_BY_TYPE_FIELD_NUMBER: _ClassVar[int]
        SUPPRESSED_NEW_VIOLATIONS_COUNT_BY_TYPE_FIELD_NUMBER: _ClassVar[int]
        TOTAL_NEW_VIOLATIONS_COUNT_BY_TYPE_FIELD_NUMBER: _ClassVar[int]
        project: Project
        new_violations_count_by_type: _containers.ScalarMap[str, int]
        suppressed_new_violations_count_by_type: _containers.ScalarMap[str, int]
        total_new_violations_count_by_type: _containers.ScalarMap[str, int]
        def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., new_violations_count_by_type: _Optional[_Mapping[str, int]] = ..., suppressed_new_violations_count_by_type: _Optional[_Mapping[str, int]] = ..., total_new_violations_count_by_type: _Optional[_Mapping[str, int]] = ...) -> None: ...
    class ProjectViolationsEntry(_message.Message):
        __slots__ = ("project", "violations")
        PROJECT_FIELD_NUMBER: _ClassVar[int]
        VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
        project: Project
        violations: _containers.RepeatedCompositeFieldContainer[NewPolicyViolationsSummarySubject.Violation]
        def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., violations: _Optional[_Iterable[_Union[NewPolicyViolationsSummarySubject.Violation, _Mapping]]] = ...) -> None: ...
    class Violation(_message.Message):
        __slots__ = ("uuid", "component", "policy_condition", "type", "timestamp", "analysis_state", "suppressed")
        UUID_FIELD_NUMBER: _ClassVar[int]
        COMPONENT_FIELD_NUMBER: _ClassVar[int]
        POLICY_CONDITION_FIELD_NUMBER: _ClassVar[int]
        TYPE_FIELD_NUMBER: _ClassVar[int]
        TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
        ANALYSIS_STATE_FIELD_NUMBER: _ClassVar[int]
        SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
        uuid: str
        component: Component
        policy_condition: PolicyCondition
        type: str
        timestamp: _timestamp_pb2.Timestamp
        analysis_state: str
        suppressed: bool
        def __init__(self, uuid: _Optional[str] = ..., component: _Optional[_Union[Component, _Mapping]] = ..., policy_condition: _Optional[_Union[PolicyCondition, _Mapping]] = ..., type: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., analysis_state: _Optional[str] = ..., suppressed: _Optional[bool] = ...) -> None: ...
    OVERVIEW_FIELD_NUMBER: _ClassVar[int]
    PROJECT_SUMMARIES_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_BY_PROJECT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    overview: NewPolicyViolationsSummarySubject.Overview
    project_summaries: _containers.RepeatedCompositeFieldContainer[NewPolicyViolationsSummarySubject.ProjectSummaryEntry]
    violations_by_project: _containers.RepeatedCompositeFieldContainer[NewPolicyViolationsSummarySubject.ProjectViolationsEntry]
    since: _timestamp_pb2.Timestamp
    def __init__(self, overview: _Optional[_Union[NewPolicyViolationsSummarySubject.Overview, _Mapping]] = ..., project_summaries: _Optional[_Iterable[_Union[NewPolicyViolationsSummarySubject.ProjectSummaryEntry, _Mapping]]] = ..., violations_by_project: _Optional[_Iterable[_Union[NewPolicyViolationsSummarySubject.ProjectViolationsEntry, _Mapping]]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
