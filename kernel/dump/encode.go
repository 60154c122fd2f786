package dump

import (
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends d's JSON document to b: the bytes encoding/json's
// Marshal gives for it (TestAppendJSONIsMarshal and FuzzAppendJSON hold it
// to that), written without reflection. In the guest, under TCG, Marshal's
// first call on a dump took 35 to 50 ms and its second 2: the first builds
// its encoders by reflection, and TCG translates the code that does so.
func (d *Dump) AppendJSON(b []byte) []byte {
	b = append(b, `{"mode":`...)
	b = strconv.AppendInt(b, int64(d.Mode), 10)
	b = appendAddr(append(b, `,"cr3":`...), d.CR3)
	b = append(b, `,"regions":`...)
	b = appendList(b, d.Regions, Region.appendJSON)
	b = append(b, `,"runs":`...)
	b = appendList(b, d.Runs, Run.appendJSON)
	b = append(b, `,"aliases":`...)
	b = appendList(b, d.Aliases, Alias.appendJSON)
	if d.IDTR != nil {
		b = d.IDTR.appendJSON(append(b, `,"idtr":`...))
	}
	if d.GDTR != nil {
		b = d.GDTR.appendJSON(append(b, `,"gdtr":`...))
	}
	if d.TR != nil {
		b = d.TR.appendJSON(append(b, `,"tr":`...))
	}
	if p := d.Process; p != nil {
		b = append(b, `,"process":{"pid":`...)
		b = strconv.AppendInt(b, int64(p.PID), 10)
		if p.UserCopy {
			b = append(b, `,"user_copy":true`...)
		}
		b = append(b, `,"pages":`...)
		b = appendList(b, p.Pages, Page.appendJSON)
		b = append(b, '}')
	}
	if len(d.Checks) > 0 {
		b = append(b, `,"check_ns":`...)
		b = appendList(b, d.Checks, CheckTime.appendJSON)
	}
	return append(b, '}')
}

// appendList appends xs as a JSON array, null when nil as Marshal has it.
func appendList[T any](b []byte, xs []T, each func(T, []byte) []byte) []byte {
	if xs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = each(x, b)
	}
	return append(b, ']')
}

// appendAddr appends a as Addr.MarshalText writes it, quoted.
func appendAddr(b []byte, a Addr) []byte { return append(a.appendText(append(b, '"')), '"') }

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

func (r Region) appendJSON(b []byte) []byte {
	b = appendAddr(append(b, `{"start":`...), r.Start)
	b = appendAddr(append(b, `,"end":`...), r.End)
	b = appendString(append(b, `,"name":`...), r.Name)
	if r.Symbol != "" {
		b = appendString(append(b, `,"symbol":`...), r.Symbol)
	}
	if r.Marker != "" {
		b = appendString(append(b, `,"marker":`...), r.Marker)
	}
	return append(b, '}')
}

func (r Run) appendJSON(b []byte) []byte {
	b = appendAddr(append(b, `{"va":`...), r.VA)
	b = appendAddr(append(b, `,"pa":`...), r.PA)
	b = appendAddr(append(b, `,"size":`...), r.Size)
	b = strconv.AppendUint(append(b, `,"count":`...), r.Count, 10)
	if r.Stride != 0 {
		b = appendAddr(append(b, `,"stride":`...), r.Stride)
	}
	b = appendString(append(b, `,"level":`...), r.Level)
	f := r.Flags
	b = appendBool(append(b, `,"flags":{"rw":`...), f.Write)
	b = appendBool(append(b, `,"user":`...), f.User)
	b = appendBool(append(b, `,"nx":`...), f.NX)
	b = appendBool(append(b, `,"global":`...), f.Global)
	if f.PWT {
		b = append(b, `,"pwt":true`...)
	}
	if f.PCD {
		b = append(b, `,"pcd":true`...)
	}
	if f.PAT {
		b = append(b, `,"pat":true`...)
	}
	b = appendString(append(b, `},"region":`...), r.Region)
	return append(b, '}')
}

func (a Alias) appendJSON(b []byte) []byte {
	b = appendString(append(b, `{"what":`...), a.What)
	b = appendAddr(append(b, `,"pa":`...), a.PA)
	b = appendAddr(append(b, `,"len":`...), a.Len)
	b = appendList(append(b, `,"vas":`...), a.VAs, func(v Addr, b []byte) []byte { return appendAddr(b, v) })
	return append(b, '}')
}

func (r *DescReg) appendJSON(b []byte) []byte {
	b = appendAddr(append(b, `{"base":`...), r.Base)
	b = appendAddr(append(b, `,"limit":`...), r.Limit)
	return append(b, '}')
}

func (r *TaskReg) appendJSON(b []byte) []byte {
	b = appendAddr(append(b, `{"selector":`...), r.Selector)
	b = appendAddr(append(b, `,"base":`...), r.Base)
	b = appendAddr(append(b, `,"limit":`...), r.Limit)
	return append(b, '}')
}

func (p Page) appendJSON(b []byte) []byte {
	b = appendAddr(append(b, `{"va":`...), p.VA)
	b = appendAddr(append(b, `,"pa":`...), p.PA)
	b = appendString(append(b, `,"what":`...), p.What)
	return append(b, '}')
}

func (c CheckTime) appendJSON(b []byte) []byte {
	b = appendString(append(b, `{"name":`...), c.Name)
	b = strconv.AppendInt(append(b, `,"ns":`...), c.Ns, 10)
	return append(b, '}')
}

// appendString appends s as a JSON string the way Marshal escapes it:
// quote, backslash and control characters; <, > and & as \u escapes (its
// HTML-safe default); invalid UTF-8 as U+FFFD; U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, `\b`...)
			case '\f':
				b = append(b, `\f`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
