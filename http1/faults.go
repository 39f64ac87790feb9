package http1

// fault names one protocol violation. The parsers report faults and the
// exported functions turn them into *Error values from fixed tables, so
// that even the error path allocates nothing.
type fault uint8

const (
	fNone fault = iota
	fIncomplete
	fLeadingLines
	fRequestLine
	fMethod
	fTarget
	fVersion
	fVersionUnsupported
	fLineTooLong
	fHeadTooLarge
	fTooManyFields
	fBareLF
	fBareCR
	fObsFold
	fFieldName
	fFieldValue
	fNoHost
	fDupHost
	fBadHost
	fCLAndTE
	fTE
	fTEInHTTP10
	fCL
	fDupCL
	fStatusLine
	fStatus
	fChunkSize
	fChunkSizeTooLarge
	fChunkLineTooLong
	fChunkExt
	fChunkEnd
	fTrailerTooLarge
	fTooManyTrailers
	fTrailerField
	numFaults
)

// reqErrors are what a server answers a client with. The chunked decoder
// uses them too: a bad chunked body is a 400 whichever side sent it, and a
// proxy reading a response body maps it to 502 itself.
var reqErrors = [numFaults]Error{
	fLeadingLines:       {400, "too many empty lines before request line"},
	fRequestLine:        {400, "malformed request line"},
	fMethod:             {400, "invalid method"},
	fTarget:             {400, "invalid request target"},
	fVersion:            {400, "malformed HTTP version"},
	fVersionUnsupported: {505, "HTTP version not supported"},
	fLineTooLong:        {414, "request line too long"},
	fHeadTooLarge:       {431, "header section too large"},
	fTooManyFields:      {431, "too many header fields"},
	fBareLF:             {400, "bare LF"},
	fBareCR:             {400, "bare CR"},
	fObsFold:            {400, "obsolete line folding"},
	fFieldName:          {400, "invalid header field name"},
	fFieldValue:         {400, "invalid header field value"},
	fNoHost:             {400, "missing Host"},
	fDupHost:            {400, "multiple Host fields"},
	fBadHost:            {400, "invalid Host"},
	fCLAndTE:            {400, "both Content-Length and Transfer-Encoding"},
	fTE:                 {400, "unsupported Transfer-Encoding"},
	fTEInHTTP10:         {400, "Transfer-Encoding in HTTP/1.0"},
	fCL:                 {400, "invalid Content-Length"},
	fDupCL:              {400, "multiple Content-Length"},
	fStatusLine:         {400, "malformed status line"},
	fStatus:             {400, "invalid status code"},
	fChunkSize:          {400, "invalid chunk size"},
	fChunkSizeTooLarge:  {400, "chunk size too large"},
	fChunkLineTooLong:   {400, "chunk line too long"},
	fChunkExt:           {400, "invalid chunk extension"},
	fChunkEnd:           {400, "chunk data not followed by CRLF"},
	fTrailerTooLarge:    {400, "trailer section too large"},
	fTooManyTrailers:    {400, "too many trailer fields"},
	fTrailerField:       {400, "framing or routing field in trailer section"},
}

// respErrors are the same faults found in an upstream's response head:
// all of them are a 502 to the client.
var respErrors [numFaults]Error

func init() {
	for i := range respErrors {
		respErrors[i] = Error{Status: 502, Reason: reqErrors[i].Reason}
	}
	respErrors[fLineTooLong].Reason = "status line too long"
	respErrors[fVersionUnsupported].Reason = "unsupported HTTP version in response"
}

// reqErr turns a fault into the error ParseRequest and the chunked decoder
// return. The returned *Error is shared and must not be modified.
func reqErr(f fault) error {
	if f == fIncomplete {
		return ErrIncomplete
	}
	return &reqErrors[f]
}

func respErr(f fault) error {
	if f == fIncomplete {
		return ErrIncomplete
	}
	return &respErrors[f]
}
