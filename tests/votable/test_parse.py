"""Tests for opus_min.votable.parse: real OPUS files and one small broken document per check."""

from __future__ import annotations

from pathlib import Path

import pytest

from opus_min.votable import InputParam, Problem, ServiceDescription, UsedEntity, parse_service

DATA = Path(__file__).parent / "data"
NS13 = "http://www.ivoa.net/xml/VOTable/v1.3"

SHORT_SCRIPT = "echo ok\n"


def make_doc(
    params: str = "",
    used: str = "",
    generated: str = "",
    *,
    name: str = "svc",
    root: str = "",
    script: str | None = None,
    ns: str = NS13,
    groups: str | None = None,
    tail: str = "",
) -> str:
    """A minimal ActivityDescription; ``groups`` replaces the three standard GROUPs and
    ``tail`` goes after them (where the XSD allows LINK)."""
    script_param = (
        f'<PARAM name="script" datatype="char" arraysize="*" value="{script}"/>'
        if script is not None
        else ""
    )
    if groups is None:
        groups = (
            f'<GROUP name="InputParams">{params}\n</GROUP>\n'
            f'<GROUP name="Used">{used}\n</GROUP>\n'
            f'<GROUP name="Generated">{generated}\n</GROUP>'
        )
    return (
        f'<VOTABLE xmlns="{ns}" version="1.3">\n'
        f'<RESOURCE ID="{name}" name="{name}" type="meta" utype="voprov:ActivityDescription">\n'
        f"<DESCRIPTION>A test service</DESCRIPTION>\n"
        f'<PARAM name="executionDuration" datatype="int" value="60"/>\n'
        f"{root}{script_param}\n"
        f"{groups}{tail}\n"
        f"</RESOURCE>\n</VOTABLE>\n"
    )


def line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of ``needle`` (so tests never hard-code layout)."""
    index = text.index(needle)
    return text.count("\n", 0, index) + 1


def parse(text: str, *, path: str = "svc.xml", script: str | None = SHORT_SCRIPT):
    return parse_service(text.encode(), path=path, script=script, script_source="svc.sh")


def messages(text: str, **kwargs) -> list[tuple[int | None, str]]:
    service, problems = parse(text, **kwargs)
    assert service is None
    assert problems, "a broken document must report problems"
    return [(p.line, p.message) for p in problems]


def param(name: str, datatype: str = "int", value: str = "1", extra: str = "", body: str = ""):
    return (
        f'\n<PARAM ID="{name}" name="{name}" datatype="{datatype}" value="{value}" {extra}>'
        f"{body}</PARAM>"
    )


def entity(name: str, default: str | None = "out.txt", attrs: str = "", body: str = "") -> str:
    default_param = (
        f'<PARAM name="default" datatype="char" arraysize="*" value="{default}"/>'
        if default is not None
        else ""
    )
    return f'\n<GROUP name="{name}" {attrs}>{default_param}{body}</GROUP>'


# --- the real OPUS files ----------------------------------------------------------------------


def test_opus_test_activity_1() -> None:
    path = DATA / "test_activity_1_vot.xml"
    service, problems = parse_service(path.read_bytes(), path=str(path), script=None)
    assert problems == []
    assert isinstance(service, ServiceDescription)
    assert service.name == "test_activity_1"
    assert service.description == "Job for tests, simply copies input text in a file"
    # OPUS stores the script with &#13;&#10; line ends; bash needs LF.
    assert service.script == "sleep 10\necho $text > $output\n"
    assert service.script_source == f"{path}#script"
    assert service.source == str(path)
    assert (service.type, service.subtype, service.version) == ("test", "test", "1")
    assert (service.contact_name, service.contact_email) == ("opus-admin", "admin@opus")
    assert (service.execution_duration, service.quote) == (20, 10)
    assert service.parameters == (
        InputParam(
            name="text",
            datatype="char",
            arraysize="*",
            default="Hello World",
            required=True,
            description="Input text for test job",
        ),
    )
    assert service.used == ()
    assert [(g.name, g.default, g.content_type) for g in service.generated] == [
        ("output", "output.txt", "text/plain")
    ]
    assert service.generated[0].description == "Output file that contains the input text"
    assert service.extra == {}


def test_opus_test_activity_2_used_entity() -> None:
    path = DATA / "test_activity_2_vot.xml"
    service, problems = parse_service(path.read_bytes(), path=str(path), script=None)
    assert problems == []
    assert service is not None
    assert service.used == (
        UsedEntity(
            name="input",
            default="input.txt",
            url="file://$ID",
            description="Input entity for test job 2",
        ),
    )
    assert service.used_entity("INPUT") is service.used[0]
    assert service.script == "sleep 10\ncat $input > $output\necho $text >> $output\n"


def test_opus_failjob_options() -> None:
    path = DATA / "failjob_vot.xml"
    service, problems = parse_service(path.read_bytes(), path=str(path), script=None)
    assert problems == []
    assert service is not None
    n = service.parameter("N")
    assert n is not None
    assert (n.datatype, n.default, n.options, n.description) == (
        "int",
        "3",
        ("1", "2", "3"),
        "a number",
    )
    assert service.script == "echo start; sleep 1; ls /nonexistent_dir_xyz; echo never"
    assert (service.execution_duration, service.quote) == (30, 5)


def test_combined_document_with_used_ref_and_script_file() -> None:
    # First RESOURCE is the OPUS one; the Used GROUP "events" refs the InputParam "events".
    path = DATA / "gammapy_maps.xml"
    service, problems = parse_service(
        path.read_bytes(), path=str(path), script="run\r\n", script_source="gammapy_maps.sh"
    )
    assert problems == []
    assert service is not None
    assert service.script == "run\n"
    assert service.script_source == "gammapy_maps.sh"
    assert service.doculink == "https://docs.gammapy.org"
    assert service.extra == {
        "accessURL": "https://host/rest/gammapy_maps",
        "standardID": "ivo://ivoa.net/std/UWS#rest-1.1",
    }
    ra = service.parameter("RA")
    assert ra is not None
    assert (ra.minimum, ra.maximum, ra.unit, ra.ucd) == ("0", "360", "deg", "pos.eq.ra")
    width = service.parameter("width")
    assert width is not None and width.required is False
    events = service.parameter("events")
    assert events is not None
    assert (events.default, events.xtype) == (None, "application/octet-stream")
    assert service.used[0].ref == "events"
    assert service.used[0].default is None
    assert service.used[0].content_type == "application/fits"


# --- structure --------------------------------------------------------------------------------


def test_minimal_document_and_missing_groups() -> None:
    doc = make_doc(groups="")
    service, problems = parse(doc)
    assert problems == []
    assert service is not None
    assert service.parameters == service.used == service.generated == ()
    assert service.execution_duration == 60
    assert service.quote is None
    assert service.script == SHORT_SCRIPT
    assert service.script_source == "svc.sh"


def test_group_names_case_insensitive_and_link_doculink() -> None:
    doc = make_doc(
        groups='<GROUP name="inputParams">' + param("n") + "</GROUP>",
        # The 1.3 XSD wants a TABLE or RESOURCE after a RESOURCE's LINK.
        tail='<LINK href="https://doc.example/svc"/><RESOURCE type="results"/>',
    )
    service, problems = parse(doc)
    assert problems == []
    assert service is not None
    assert [p.name for p in service.parameters] == ["n"]
    assert service.doculink == "https://doc.example/svc"


def test_rec_names_docurl_and_content_type() -> None:
    doc = make_doc(
        root='<PARAM name="docurl" datatype="char" arraysize="*" value="https://d"/>',
        generated=entity(
            "result",
            body='<PARAM name="contentType" datatype="char" arraysize="*" value="image/png"/>',
        ),
    )
    service, problems = parse(doc)
    assert problems == []
    assert service is not None
    assert service.doculink == "https://d"
    assert service.generated[0].content_type == "image/png"


def test_falls_back_to_first_meta_resource() -> None:
    doc = make_doc().replace(' utype="voprov:ActivityDescription"', "")
    service, problems = parse(doc)
    assert problems == []
    assert service is not None and service.name == "svc"


def test_no_suitable_resource() -> None:
    doc = make_doc().replace(' type="meta" utype="voprov:ActivityDescription"', "")
    assert messages(doc) == [
        (1, 'no RESOURCE with utype="voprov:ActivityDescription" or type="meta"')
    ]


def test_name_must_match_file_name() -> None:
    doc = make_doc(name="other")
    assert messages(doc, path="services/svc_vot.xml") == [
        (2, "service name 'other' does not match the file name: expected 'svc'")
    ]
    # Both the plain stem and OPUS's <name>_vot.xml convention are accepted.
    assert parse(make_doc(), path="services/svc_vot.xml")[1] == []
    assert parse(make_doc(), path="services/svc.xml")[1] == []


def test_invalid_service_name() -> None:
    # "svc.v2" is a valid XML ID, so only the service-name rule reports it.
    doc = make_doc(name="svc.v2")
    assert messages(doc, path="svc.v2.xml") == [
        (2, "service name 'svc.v2' is not valid (a letter, then up to 63 letters, digits, _ or -)")
    ]


def test_wrong_root_element() -> None:
    assert messages('<VOTABLE version="1.3"/>') == [
        (1, f"not a VOTable: the root element must be VOTABLE in namespace {NS13}")
    ]


def test_votable_12_namespace_parsed_without_xsd() -> None:
    # The 1.2 namespace is not validated, so the unknown attribute passes; parsing still works.
    doc = make_doc(params=param("n"), ns="http://www.ivoa.net/xml/VOTable/v1.2")
    doc = doc.replace('<GROUP name="Used">', '<GROUP name="Used" colour="red">')
    service, problems = parse(doc)
    assert problems == []
    assert service is not None and service.parameters[0].name == "n"


def test_unknown_and_duplicate_groups() -> None:
    doc = make_doc(groups='<GROUP name="Outputs"/>\n<GROUP name="Used"/>\n<GROUP name="used"/>')
    assert messages(doc) == [
        (
            line_of(doc, "Outputs"),
            "unknown GROUP 'Outputs' (expected InputParams, Used or Generated)",
        ),
        (line_of(doc, '"used"'), "duplicate GROUP 'Used'"),
    ]


def test_param_directly_in_used_group() -> None:
    doc = make_doc(used='<PARAM name="x" datatype="char" arraysize="*" value=""/>')
    assert messages(doc) == [
        (line_of(doc, 'name="x"'), "GROUP 'Used': unexpected PARAM (expected one GROUP per entity)")
    ]


def test_values_min_max_options_flattened() -> None:
    body = (
        '<DESCRIPTION>  A mode  </DESCRIPTION><VALUES><OPTION name="g" value="a">'
        '<OPTION value="b"/><OPTION value="c"/></OPTION></VALUES>'
    )
    limits = '<VALUES><MIN value="0" inclusive="no"/><MAX value="10"/></VALUES>'
    doc = make_doc(
        params=param("mode", "char", "b", 'arraysize="*" type="no_query"', body)
        + param("x", "double", "", 'unit="deg"', limits)
    )
    service, problems = parse(doc)
    assert problems == []
    assert service is not None
    mode, x = service.parameters
    assert mode.options == ("a", "b", "c")
    assert mode.description == "A mode"
    assert mode.required is False
    assert (x.default, x.minimum, x.minimum_inclusive, x.maximum, x.maximum_inclusive) == (
        None,
        "0",
        False,
        "10",
        True,
    )


# --- scripts ----------------------------------------------------------------------------------


def test_script_param_wins_over_script_file() -> None:
    doc = make_doc(script="echo param&#13;&#10;")
    service, _ = parse(doc, script="echo file\n")
    assert service is not None
    assert (service.script, service.script_source) == ("echo param\n", "svc.xml#script")


def test_empty_script_param_uses_script_file() -> None:
    service, _ = parse(make_doc(script=""), script="echo file\r\n")
    assert service is not None
    assert (service.script, service.script_source) == ("echo file\n", "svc.sh")


def test_missing_script() -> None:
    doc = make_doc()
    assert messages(doc, script=None) == [(2, "no job script: add a `script` PARAM or svc.sh")]
    assert messages(doc, script="  \n") == [(2, "no job script: add a `script` PARAM or svc.sh")]


# --- root PARAMs ------------------------------------------------------------------------------


def test_execution_duration_and_quote_must_be_seconds() -> None:
    doc = make_doc(root='<PARAM name="quote" datatype="int" value="soon"/>').replace(
        'value="60"', 'value="-1"'
    )
    assert messages(doc) == [
        (
            line_of(doc, "executionDuration"),
            "executionDuration must be a whole number of seconds (>= 0), not '-1'",
        ),
        (line_of(doc, '"quote"'), "quote must be a whole number of seconds (>= 0), not 'soon'"),
    ]


def test_duplicate_root_param() -> None:
    doc = make_doc(root='<PARAM name="executionDuration" datatype="int" value="5"/>')
    assert messages(doc) == [(5, "duplicate root PARAM 'executionDuration'")]


# --- InputParams ------------------------------------------------------------------------------


def test_unsupported_datatype() -> None:
    # floatComplex is valid VOTable (the XSD accepts it) but a job script cannot receive it.
    doc = make_doc(params=param("z", "floatComplex", "1 2"))
    expected = (
        "parameter 'z': datatype 'floatComplex' is not supported (expected one of boolean, "
        "unsignedByte, short, int, long, char, unicodeChar, float, double)"
    )
    assert messages(doc) == [(line_of(doc, 'name="z"'), expected)]


def test_unknown_datatype_is_also_an_xsd_error() -> None:
    doc = make_doc(params=param("s", "string", "x"))
    line = line_of(doc, 'name="s"')
    found = messages(doc)
    assert len(found) == 2
    assert found[0][0] == line
    assert found[0][1].startswith(
        "VOTable schema: Element 'PARAM', attribute 'datatype': [facet 'enumeration'] "
        "The value 'string' is not an element of the set"
    )
    assert found[1] == (
        line,
        "parameter 's': datatype 'string' is not supported (expected one of boolean, "
        "unsignedByte, short, int, long, char, unicodeChar, float, double)",
    )


@pytest.mark.parametrize(
    ("arraysize", "message"),
    [
        ("2x3", "parameter 'a': arraysize '2x3': multi-dimensional arrays are not supported"),
        ("0", "parameter 'a': arraysize '0' is not valid (expected *, n or n*)"),
    ],
)
def test_bad_arraysize(arraysize: str, message: str) -> None:
    doc = make_doc(params=param("a", "int", "1", f'arraysize="{arraysize}"'))
    assert messages(doc) == [(line_of(doc, 'name="a"'), message)]


@pytest.mark.parametrize("arraysize", ["*", "3", "3*"])
def test_good_arraysize(arraysize: str) -> None:
    service, problems = parse(
        make_doc(params=param("a", "int", "1 2 3", f'arraysize="{arraysize}"'))
    )
    assert problems == []
    assert service is not None and service.parameters[0].arraysize == arraysize


def test_default_outside_min_max() -> None:
    doc = make_doc(params=param("n", "int", "7", body='<VALUES><MAX value="5"/></VALUES>'))
    assert messages(doc) == [
        (line_of(doc, 'name="n"'), "invalid default: n: 7 is above the maximum 5")
    ]


def test_default_not_in_options() -> None:
    body = '<VALUES><OPTION value="a"/><OPTION value="b"/></VALUES>'
    doc = make_doc(params=param("mode", "char", "x", 'arraysize="*"', body))
    assert messages(doc) == [
        (line_of(doc, 'name="mode"'), "invalid default: mode: 'x' is not one of a, b")
    ]


def test_default_of_wrong_type() -> None:
    doc = make_doc(params=param("n", "int", "abc"))
    assert messages(doc) == [(line_of(doc, 'name="n"'), "invalid default: n: 'abc' is not an int")]


def test_min_greater_than_max_and_bad_bounds() -> None:
    doc = make_doc(
        params=param("n", "int", "", body='<VALUES><MIN value="5"/><MAX value="1"/></VALUES>')
        + param("m", "int", "", body='<VALUES><MIN value="1.5"/></VALUES>')
        + param("f", "double", "", body='<VALUES><MAX value="nan"/></VALUES>')
        + param("s", "char", "", 'arraysize="*"', '<VALUES><MIN value="a"/></VALUES>')
    )
    assert messages(doc) == [
        (line_of(doc, 'name="n"'), "parameter 'n': MIN 5 is greater than MAX 1"),
        (line_of(doc, 'name="m"'), "invalid MIN: m: '1.5' is not an int"),
        (line_of(doc, 'name="f"'), "invalid MAX: f: 'nan' is not a finite number"),
        (line_of(doc, 'name="s"'), "parameter 's': MIN is only supported for numeric datatypes"),
    ]


def test_exclusive_bounds_leaving_no_value() -> None:
    doc = make_doc(
        params=param(
            "n", "int", "", body='<VALUES><MIN value="2" inclusive="no"/><MAX value="2"/></VALUES>'
        )
    )
    assert messages(doc) == [
        (
            line_of(doc, 'name="n"'),
            "parameter 'n': no value lies between MIN and MAX (exclusive bounds)",
        )
    ]


def test_option_of_wrong_type() -> None:
    body = '<VALUES><OPTION value="1"/><OPTION value="two"/></VALUES>'
    doc = make_doc(params=param("n", "int", "1", body=body))
    assert messages(doc) == [(line_of(doc, 'name="n"'), "invalid OPTION: n: 'two' is not an int")]


# --- names ------------------------------------------------------------------------------------


def test_names_must_be_shell_identifiers() -> None:
    doc = make_doc(params=param("my-param"), generated=entity("2out"))
    assert messages(doc) == [
        (
            line_of(doc, 'name="my-param"'),
            "parameter 'my-param': the name must be a shell identifier "
            "(letters, digits and _, not starting with a digit)",
        ),
        (
            line_of(doc, 'name="2out"'),
            "Generated entity '2out': the name must be a shell identifier "
            "(letters, digits and _, not starting with a digit)",
        ),
    ]


def test_duplicate_names_case_insensitive() -> None:
    doc = make_doc(params=param("Text", "char", "", 'arraysize="*"'), generated=entity("text"))
    first = line_of(doc, 'name="Text"')
    assert messages(doc) == [
        (
            line_of(doc, 'name="text"'),
            f"Generated entity 'text': the name is already used by parameter 'Text' "
            f"(line {first}); names are compared case-insensitively",
        )
    ]


def test_used_may_share_the_name_of_its_ref_param_only() -> None:
    ok = make_doc(
        params=param("infile", "char", "", 'arraysize="*"'),
        used=entity("infile", "in.fits", 'ref="infile"'),
    )
    service, problems = parse(ok)
    assert problems == []
    assert service is not None and service.used[0].ref == "infile"

    # Same name without a ref: two different things would become the same shell variable.
    clash = make_doc(
        params=param("infile", "char", "", 'arraysize="*"'), used=entity("INFILE", "in.fits")
    )
    first = line_of(clash, 'name="infile"')
    assert messages(clash) == [
        (
            line_of(clash, 'name="INFILE"'),
            f"Used entity 'INFILE': the name is already used by parameter 'infile' "
            f"(line {first}); names are compared case-insensitively",
        )
    ]


def test_used_ref_must_name_an_input_param() -> None:
    doc = make_doc(used=entity("data", "data.txt", 'ref="missing"'))
    messages_found = messages(doc)
    assert (
        line_of(doc, 'name="data"'),
        "Used entity 'data': ref 'missing' does not name an InputParam",
    ) in messages_found


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("PHASE", "the name is reserved (a UWS control parameter)"),
        ("runId", "the name is reserved (a UWS control parameter)"),
        ("executionDuration", "the name is reserved (a UWS control parameter)"),
        ("PATH", "the name is reserved (a shell variable)"),
        ("LD_PRELOAD", "the name is reserved (a shell variable)"),
        ("IFS", "the name is reserved (a shell variable)"),
        ("OPUS_JOB", "names starting with OPUS_, BASH, SLURM_ are reserved"),
        ("BASH_FUNC", "names starting with OPUS_, BASH, SLURM_ are reserved"),
        ("SLURM_JOB_ID", "names starting with OPUS_, BASH, SLURM_ are reserved"),
    ],
)
def test_reserved_names(name: str, reason: str) -> None:
    doc = make_doc(params=param(name))
    assert messages(doc) == [(line_of(doc, f'ID="{name}"'), f"parameter {name!r}: {reason}")]


def test_lower_case_shell_names_are_allowed() -> None:
    # Shell variables are case-sensitive: $path does not touch $PATH.
    service, problems = parse(make_doc(params=param("path", "char", "", 'arraysize="*"')))
    assert problems == []
    assert service is not None and service.parameters[0].name == "path"


# --- Used / Generated -------------------------------------------------------------------------


@pytest.mark.parametrize("default", ["/etc/passwd", "../out.txt", "a/../../b"])
def test_generated_default_must_stay_inside_the_job_directory(default: str) -> None:
    doc = make_doc(generated=entity("out", default))
    assert messages(doc) == [
        (
            line_of(doc, 'name="out"'),
            f"Generated entity 'out': default {default!r} must be a relative path without '..'",
        )
    ]


def test_generated_default_required_and_globs_allowed() -> None:
    doc = make_doc(generated=entity("out", None))
    assert messages(doc) == [
        (
            line_of(doc, 'name="out"'),
            "Generated entity 'out': a `default` PARAM (the output file name) is required",
        )
    ]
    service, problems = parse(make_doc(generated=entity("plots", "plots/*.png")))
    assert problems == []
    assert service is not None and service.generated[0].default == "plots/*.png"


@pytest.mark.parametrize("default", ["sub/in.txt", ".."])
def test_used_default_must_be_a_plain_file_name(default: str) -> None:
    doc = make_doc(used=entity("data", default))
    assert messages(doc) == [
        (
            line_of(doc, 'name="data"'),
            f"Used entity 'data': default {default!r} must be a plain file name (no '/' or '..')",
        )
    ]


def test_used_link_counts_as_url() -> None:
    # OPUS reads a LINK inside the entity GROUP; the 1.3 XSD forbids it there, so use 1.2.
    doc = make_doc(
        used=entity("cat", "cat.xml", body='<LINK href="https://cat.example/?id=$ID"/>'),
        ns="http://www.ivoa.net/xml/VOTable/v1.2",
    )
    service, problems = parse(doc)
    assert problems == []
    assert service is not None and service.used[0].url == "https://cat.example/?id=$ID"


# --- hostile or broken XML --------------------------------------------------------------------


def test_malformed_xml_reports_the_line() -> None:
    doc = make_doc(params=param("n")).replace("</PARAM>", "</PARM>")
    line = line_of(doc, "</PARM>")
    assert messages(doc) == [
        (
            line,
            f"malformed XML: Opening and ending tag mismatch: PARAM line {line} and PARM, "
            f"line {line}, column 57",
        )
    ]


def test_external_entity_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    doc = (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE VOTABLE [\n<!ENTITY x SYSTEM "file://{secret}">\n'
        '<!ENTITY y SYSTEM "file:///etc/passwd">\n]>\n'
        + make_doc().replace("A test service", "&x;&y;")
    )
    found = messages(doc)
    assert found == [(2, "DOCTYPE declarations (DTDs, entities) are not allowed")]
    text = repr(found)
    assert "TOP-SECRET-CONTENT" not in text
    assert "root:" not in text  # the first field of /etc/passwd


def test_billion_laughs_refused() -> None:
    # lol1 = 10 x lol, lol2 = 10 x lol1, ... lol9 = 10**9 x "lol" if it were ever expanded.
    entities = '<!ENTITY lol0 "lol">\n' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">\n' for i in range(1, 10)
    )
    doc = f"<!DOCTYPE VOTABLE [\n{entities}]>\n" + make_doc().replace("A test service", "&lol9;")
    assert messages(doc) == [(1, "DOCTYPE declarations (DTDs, entities) are not allowed")]


def test_external_dtd_refused() -> None:
    doc = '<!DOCTYPE VOTABLE SYSTEM "http://example.invalid/votable.dtd">\n' + make_doc()
    assert messages(doc) == [(1, "DOCTYPE declarations (DTDs, entities) are not allowed")]


def test_xsd_invalid_unknown_attribute_on_group() -> None:
    doc = make_doc().replace('<GROUP name="Used">', '<GROUP name="Used" colour="red">')
    assert messages(doc) == [
        (
            line_of(doc, "colour"),
            "VOTable schema: Element 'GROUP', attribute 'colour': "
            "The attribute 'colour' is not allowed.",
        )
    ]


def test_problem_str_names_path_and_line() -> None:
    _, problems = parse(make_doc(params=param("n", "int", "x")), path="services/svc.xml")
    assert [str(p) for p in problems] == [
        f"services/svc.xml:{problems[0].line}: invalid default: n: 'x' is not an int"
    ]
    assert problems[0] == Problem(
        "services/svc.xml", problems[0].line, "invalid default: n: 'x' is not an int"
    )
